"""The Data Query tests' limits and refused queries, shared by the checker tests and the end-to-end
jobs: the worker runs with small limits (1,000 rows, 3 s a statement), so the too-large and
too-slow queries fail fast."""

MAX_ROWS = 1000
ENDLESS = "with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t"
TIMEOUT_MS = 3000


REJECTED = [
    ("select * from pg_catalog.pg_user", "Table 'pg_catalog.pg_user' does not exist"),
    ("select relname from pg_class", "Table 'pg_class' does not exist"),
    ("select * from information_schema.tables", "Table 'information_schema.tables' does not"),
    ("select pg_read_file('/etc/passwd')", "Function 'pg_read_file' not registered"),
    (
        "select set_config('partnerbill.query_tenant', 'x', true)",
        "Function 'set_config' not registered",
    ),
    ("select current_setting('partnerbill.query_tenant')", "Function 'current_setting'"),
    ("select * from account where id in (select id from public.accounts)", "'public.accounts'"),
    ("select 1; drop table accounts --", "Only one statement can be run"),
    ("select 1 /* ; */; /* */ delete from accounts", "Only one statement can be run"),
    ("select 1; select 2", "Only one statement can be run"),
    ("select * into stolen from account", "SELECT ... INTO is not supported"),
    ("select * from account for update", "FOR UPDATE / FOR SHARE is not supported"),
    ("select pg_sleep(10)", "Function 'pg_sleep' not registered"),
    ("select dblink('host=x', 'select 1')", "Function 'dblink' not registered"),
    ("select lo_import('/etc/passwd')", "Function 'lo_import' not registered"),
    ("select query_to_xml('select 1', true, true, '')", "Function 'query_to_xml'"),
    ("select txid_current()", "Function 'txid_current' not registered"),
    ("select version()", "not registered"),
    ("select * from zuora.account", "Table 'zuora.account' does not exist"),
    (
        "select * from (with accounts as (select 1 id) select * from accounts) q, accounts",
        "Table 'accounts' does not exist",
    ),
    ("delete from account", "DELETE is not supported"),
    ("drop table accounts", "DROP is not supported"),
    ("update account set name = 'x'", "UPDATE is not supported"),
    ("select region_c from account", "Column 'region_c' cannot be resolved"),
    ("select a.region_c from account a", "Column 'region_c' cannot be resolved"),
    ("select * from nosuchtable", "Table 'nosuchtable' does not exist"),
    ("selec id from account", "mismatched input"),
    ("select id from account where id = ?", "A bind parameter is not supported"),
    ("show functions", "Only SELECT queries"),
    ("describe pg_class", "Table 'pg_class' does not exist"),
    ("select zuora.account.id from account", "Column 'zuora.account.id' cannot be resolved"),
    ("select pg_catalog.upper(name) from account", "cannot be resolved"),
    ("select pg_catalog.at_timezone(createddate, 'UTC') from account", "cannot be resolved"),
    ("select " + "(" * 3000 + "1" + ")" * 3000, "nested too deeply"),
    ("select cast(name as json) from account", "Unknown type: JSON"),
]
