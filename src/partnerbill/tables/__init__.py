"""The database tables, one module per feature (`tables.billing` holds invoices and bill runs,
`tables.payments` payments, refunds and the application ledger, ...), on core's shared metadata.

They live apart from the features' code so that a feature reading another's rows — an account's
summary its invoices, the metrics recompute every document, settlement an invoice's balance —
depends on this package, not on that feature's services. This package imports nothing but
`core`; the features above it import each other in one direction only (the import-direction
test holds both). The rules for writing a table stay with its feature's service code.
"""
