"""The tables a database distributed by tenant keeps whole on every node (reference tables),
shared by the schema-key and tenant-bound-statement tests."""

# Looked up by what a request names before its tenant is known: a token request's client id,
# a sign-in's email.
REFERENCE_TABLES = {"oauth_clients", "ui_users"}
