package segment

// Category is the category the engine's catalog knows for sku (learnt from pinned
// products and order lines), or "". The Shopify webhook uses it, since Shopify's line
// items carry no category.
func (e *Engine) Category(sku string) string { return e.catalog.category(sku) }
