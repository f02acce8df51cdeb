package segment

// Category is the category the engine's catalog knows for sku (learnt from pinned
// products and order lines), or "". The Shopify webhook uses it, since Shopify's line
// items carry no category.
func (e *Engine) Category(sku string) string { return e.catalog.category(sku) }

// CatalogVersion counts the changes to the product catalog: a category read after
// reading it is at least as new as the count says.
func (e *Engine) CatalogVersion() uint64 { return e.catalog.changes.Load() }
