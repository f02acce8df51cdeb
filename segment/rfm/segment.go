package rfm

// The classic 11 segment names, as the contract spells them.
const (
	Champions      = "Champions"
	LoyalCustomers = "Loyal Customers"
	PotentialLoyal = "Potential Loyalist"
	NewCustomers   = "New Customers"
	Promising      = "Promising"
	NeedAttention  = "Need Attention"
	AboutToSleep   = "About To Sleep"
	AtRisk         = "At Risk"
	CantLoseThem   = "Can't Lose Them"
	Hibernating    = "Hibernating"
	Lost           = "Lost"
	// NoOrders is the segment of a viewer who never ordered.
	NoOrders = ""
)

// The value tiers Tier maps segments to.
const (
	VIP       = "vip"
	Important = "important"
	Potential = "potential"
	Ordinary  = "ordinary"
)

// rule is one line of the segment table: R in [rMin,rMax] and FM in [fmMin,fmMax].
type rule struct {
	name         string
	rMin, rMax   int
	fmMin, fmMax int
}

// Rules is the segment table in the order it is tried; the first match wins. FM is
// ⌊(F+M)/2⌋. Every (R, FM) pair from 1 to 5 matches a rule, and each of the 11
// segments is the first match of at least one pair. The order decides the overlaps:
// Champions before Loyal Customers, Can't Lose Them before At Risk.
var Rules = []rule{
	{Champions, 4, 5, 4, 5},
	{CantLoseThem, 1, 1, 4, 5},
	{AtRisk, 1, 2, 3, 5},
	{LoyalCustomers, 3, 5, 3, 5},
	{PotentialLoyal, 4, 5, 2, 2},
	{NewCustomers, 5, 5, 1, 1},
	{Promising, 4, 4, 1, 1},
	{NeedAttention, 3, 3, 2, 2},
	{AboutToSleep, 3, 3, 1, 1},
	{Hibernating, 2, 2, 1, 2},
	{Lost, 1, 1, 1, 2},
}

// Segment names the segment of scores r, f, m (each 1..5).
func Segment(r, f, m int) string {
	fm := (f + m) / 2
	for _, ru := range Rules {
		if r >= ru.rMin && r <= ru.rMax && fm >= ru.fmMin && fm <= ru.fmMax {
			return ru.name
		}
	}
	return Lost
}

// Tier maps a segment to the value tag: vip, important, potential or ordinary. A
// viewer who never ordered (NoOrders) is potential.
func Tier(segment string) string {
	switch segment {
	case Champions, LoyalCustomers:
		return VIP
	case PotentialLoyal, AtRisk, CantLoseThem:
		return Important
	case NewCustomers, Promising, NoOrders:
		return Potential
	}
	return Ordinary
}
