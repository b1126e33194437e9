"""External payment methods (no gateway): Check, Cash, CashOnDelivery and the other types
Zuora records without processing."""
