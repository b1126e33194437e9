"""The query catalogue: every object the query surfaces expose, named as Zuora names it.

One definition serves every surface. An object has an API name (`InvoiceItem`, used by ZOQL,
Export ZOQL and describe), a Data Query table (`invoiceitem`; `orders` for Order, as Zuora has
it), an Object Query path (`invoice-items`) and fields with PascalCase API names
(`PartnerAccount`). A field's Data Query column is its API name in lower case
(`partneraccount`), its Object Query name the API name with a lower-case first letter
(`partnerAccount`).

Each object is a view in the `zuora` schema, and another in `zuora_object_query`
(`query/views.py` makes both from this module at every migration), filtered to the tenant bound
to the reading transaction. Each schema's views are the only thing its query role can read.

Foreign keys (`AccountId` on an invoice) are plain columns for Data Query and Object Query, but
not in the `export` context: Export ZOQL reaches them through the relation (`Account.Id`), and
`select *` leaves them out, as Zuora does.
"""

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum


class FieldType(StrEnum):
    """Describe's type names; `trino` gives the Data Query (DESCRIBE) type of each."""

    TEXT = "text"
    PICKLIST = "picklist"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"

    @property
    def trino(self) -> str:
        return {
            FieldType.TEXT: "varchar",
            FieldType.PICKLIST: "varchar",
            FieldType.BOOLEAN: "boolean",
            FieldType.INTEGER: "bigint",
            FieldType.DECIMAL: "decimal(18,6)",
            FieldType.DATE: "date",
            FieldType.DATETIME: "timestamp with time zone",
        }[self]

    @property
    def postgres(self) -> str:
        """The view column's type: every value of a type reads the same on every surface."""
        return {
            FieldType.TEXT: "text",
            FieldType.PICKLIST: "text",
            FieldType.BOOLEAN: "boolean",
            FieldType.INTEGER: "bigint",
            FieldType.DECIMAL: "numeric",
            FieldType.DATE: "date",
            FieldType.DATETIME: "timestamptz",
        }[self]


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # API name, PascalCase
    sql: str  # expression over the object's source, in the view
    type: FieldType
    label: str = ""
    export: bool = True  # selectable by Export ZOQL (foreign keys are not)
    filterable: bool = False  # an Object Query filter[] / sort[] field
    # Part of the Reseller Account feature: Object Query leaves it out for a tenant that has the
    # feature disabled (`as_seen`); the views keep it for every tenant.
    reseller_account: bool = False

    @property
    def column(self) -> str:
        """The view's and Data Query's column name."""
        return self.name.lower()

    @property
    def camel(self) -> str:
        """The Object Query field name."""
        return self.name[0].lower() + self.name[1:]

    @property
    def display_label(self) -> str:
        """Describe's label and AQuA's header without query labels (`Account Number`)."""
        if self.label:
            return self.label
        words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|$)|[A-Z][a-z0-9]*|[0-9]+", self.name)
        return " ".join("ID" if w == "Id" else w for w in words)


@dataclass(frozen=True, slots=True)
class Relation:
    """A parent object joined by Export ZOQL (`Account.PartnerAccount` from `Invoice`): the
    child's `column` holds the parent's `Id`."""

    name: str  # as written in a query: Account, InvoiceOwner, BillToContact
    target: str  # the parent object's API name
    column: str  # the child's view column holding the parent's id


@dataclass(frozen=True, slots=True)
class Expand:
    """An Object Query `expand[]` name: `many` children whose `target_column` equals this
    object's `column`, or the one parent whose `target_column` equals it."""

    name: str  # lower case, as in expand[]=rateplans
    target: str  # the expanded object's API name
    column: str  # this object's view column
    target_column: str  # the expanded object's view column
    many: bool
    key: str = ""  # the answer's key when it is not the target's name (`billTo`, a Contact)

    @property
    def answer_key(self) -> str:
        """The key the expanded object (or list) has in an Object Query answer: `ratePlans`."""
        if self.key:
            return self.key
        name = self.target[0].lower() + self.target[1:]
        return f"{name}s" if self.many else name


@dataclass(frozen=True, slots=True)
class QueryObject:
    name: str  # API name: ZOQL, Export ZOQL, describe
    table: str  # view and Data Query table name
    path: str  # Object Query path
    source: str  # FROM clause over the base tables
    tenant: str  # the source's tenant column
    fields: tuple[Field, ...]
    relations: tuple[Relation, ...] = ()
    expands: tuple[Expand, ...] = ()
    number: str | None = None  # the field an Object Query key may name besides Id
    label: str = ""
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name.lower(): f for f in self.fields})

    def field(self, name: str) -> Field | None:
        """The field named `name`, in any case (`partneraccount`, `PartnerAccount`)."""
        return self.by_name.get(name.lower())

    def relation(self, name: str) -> Relation | None:
        return next((r for r in self.relations if r.name.lower() == name.lower()), None)

    def expand(self, name: str) -> Expand | None:
        return next((e for e in self.expands if e.name == name.lower()), None)

    @property
    def display_label(self) -> str:
        return self.label or " ".join(re.findall(r"[A-Z][a-z]*", self.name))


# Short names for the tables below; DAY is a date, DT a timestamp with time zone.
T, P, B, INT, D, DT, DAY = (
    FieldType.TEXT,
    FieldType.PICKLIST,
    FieldType.BOOLEAN,
    FieldType.INTEGER,
    FieldType.DECIMAL,
    FieldType.DATETIME,
    FieldType.DATE,
)


def f(name: str, sql: str, type_: FieldType = T, **options: object) -> Field:
    return Field(name, sql, type_, **options)  # type: ignore[arg-type]


def key(name: str, sql: str) -> Field:
    """A foreign key: a Data Query / Object Query column, reached as `Rel.Id` by Export ZOQL."""
    return Field(name, sql, T, export=False, filterable=True)


def audit(alias: str, updated: bool = True) -> tuple[Field, ...]:
    """CreatedDate / UpdatedDate (the API user's name for who did it is not tracked)."""
    created = f("CreatedDate", f"{alias}.created_at", DT)
    if not updated:
        return (created, f("UpdatedDate", f"{alias}.created_at", DT, filterable=True))
    return (created, f("UpdatedDate", f"{alias}.updated_at", DT, filterable=True))


def ident(alias: str) -> Field:
    return f("Id", f"{alias}.id", T, filterable=True)


def contact_fields(doc: str) -> tuple[Field, ...]:
    """A contact kept as JSON on its account."""
    names = {
        "FirstName": "firstName",
        "LastName": "lastName",
        "NickName": "nickname",
        "WorkEmail": "workEmail",
        "PersonalEmail": "personalEmail",
        "WorkPhone": "workPhone",
        "HomePhone": "homePhone",
        "MobilePhone": "mobilePhone",
        "Fax": "fax",
        "Address1": "address1",
        "Address2": "address2",
        "City": "city",
        "County": "county",
        "State": "state",
        "PostalCode": "zipCode",
        "Country": "country",
        "TaxRegion": "taxRegion",
        "Description": "description",
    }
    return tuple(f(name, f"{doc}->>'{json_key}'") for name, json_key in names.items())


METRICS = "account_metrics m ON m.tenant_id = a.tenant_id AND m.account_id = a.id"
BALANCE = (
    "(m.total_invoice_balance + m.total_debit_memo_balance"
    " - m.unapplied_payment_amount - m.unapplied_credit_memo_amount)"
)

ACCOUNT = QueryObject(
    name="Account",
    table="account",
    path="accounts",
    source=f"accounts a JOIN {METRICS}",
    tenant="a.tenant_id",
    number="AccountNumber",
    fields=(
        ident("a"),
        f("AccountNumber", "a.account_number", filterable=True),
        f("Name", "a.name", filterable=True),
        f("Status", "a.status", P, filterable=True),
        f("Currency", "a.currency", P, filterable=True),
        f("BillCycleDay", "a.bill_cycle_day", INT, filterable=True),
        f("BcdSettingOption", "a.bcd_setting_option", P, label="Bill Cycle Day Setting Option"),
        f("PaymentTerm", "a.payment_term"),
        f("AutoPay", "a.auto_pay", B),
        f("Batch", "a.batch", P, label="Billing Batch", filterable=True),
        f("Notes", "a.notes"),
        f("CrmId", "a.crm_id", label="CRM Account ID", filterable=True),
        f("SalesRepName", "a.sales_rep", label="Sales Rep"),
        f("PurchaseOrderNumber", "a.purchase_order_number", label="PO Number"),
        f("CustomerServiceRepName", "a.customer_service_rep_name", label="CSR"),
        f(
            "InvoiceDeliveryPrefsEmail",
            "a.invoice_delivery_prefs_email",
            B,
            label="Invoice Delivery Preferences Email",
        ),
        f(
            "InvoiceDeliveryPrefsPrint",
            "a.invoice_delivery_prefs_print",
            B,
            label="Invoice Delivery Preferences Print",
        ),
        key("BillToId", "a.bill_to_contact->>'id'"),
        key("SoldToId", "a.sold_to_contact->>'id'"),
        f("PartnerAccount", "a.partner_account", B, filterable=True, reseller_account=True),
        f("LastMetricsUpdate", "m.last_metrics_update", DT, filterable=True, reseller_account=True),
        f("Balance", BALANCE, D, label="Account Balance", filterable=True),
        f("TotalInvoiceBalance", "m.total_invoice_balance", D),
        f("TotalDebitMemoBalance", "m.total_debit_memo_balance", D),
        f("UnappliedBalance", "m.unapplied_payment_amount", D),
        f("UnappliedCreditMemoAmount", "m.unapplied_credit_memo_amount", D),
        f("CreditBalance", "m.credit_balance", D),
        f("ReservedPaymentAmount", "m.reserved_payment_amount", D),
        f("ContractedMrr", "m.contracted_mrr", D, label="CMRR"),
        f("LastInvoiceDate", "m.last_invoice_date", DAY, filterable=True),
        f("LastPaymentDate", "m.last_payment_date", DAY),
        f("LastPaymentAmount", "m.last_payment_amount", D),
        *audit("a"),
    ),
    relations=(
        Relation("BillToContact", "Contact", "billtoid"),
        Relation("SoldToContact", "Contact", "soldtoid"),
    ),
    expands=(
        Expand("billto", "Contact", "billtoid", "id", many=False, key="billTo"),
        Expand("soldto", "Contact", "soldtoid", "id", many=False, key="soldTo"),
        Expand("subscriptions", "Subscription", "id", "accountid", many=True),
        Expand("invoices", "Invoice", "id", "accountid", many=True),
        Expand("payments", "Payment", "id", "accountid", many=True),
        Expand("contacts", "Contact", "id", "accountid", many=True),
    ),
)

CONTACT = QueryObject(
    name="Contact",
    table="contact",
    path="contacts",
    # An account's bill-to and sold-to contacts are JSON on its row (one shared by both roles is
    # one contact); its other contacts are rows of account_contacts.
    source=(
        "(SELECT a.tenant_id, a.id AS account_id, r.c, a.created_at, a.updated_at FROM accounts a"
        " CROSS JOIN LATERAL (SELECT DISTINCT ON (c->>'id') c FROM"
        " (VALUES (a.bill_to_contact), (a.sold_to_contact)) AS v(c)) AS r"
        " UNION ALL SELECT x.tenant_id, x.account_id, x.contact, x.created_at, x.updated_at"
        " FROM account_contacts x) AS k"
    ),
    tenant="k.tenant_id",
    fields=(
        f("Id", "k.c->>'id'", filterable=True),
        key("AccountId", "k.account_id"),
        *contact_fields("k.c"),
        *audit("k"),
    ),
    relations=(Relation("Account", "Account", "accountid"),),
    expands=(Expand("account", "Account", "accountid", "id", many=False),),
)

SUBSCRIPTION = QueryObject(
    name="Subscription",
    table="subscription",
    path="subscriptions",
    source="subscriptions s",
    tenant="s.tenant_id",
    number="Name",
    fields=(
        f("Id", "s.version_id", filterable=True),
        f("OriginalId", "s.id", label="Original ID"),
        f("Name", "s.subscription_number", label="Subscription Number", filterable=True),
        f("Version", "s.version", INT),
        key("AccountId", "s.account_id"),
        key("InvoiceOwnerId", "s.invoice_owner_account_id"),
        f("Status", "s.status", P, filterable=True),
        f("Currency", "s.currency", P),
        f("TermType", "s.term_type", P, filterable=True),
        f("InitialTerm", "s.initial_term", INT),
        f("InitialTermPeriodType", "s.initial_term_period_type", P),
        f("RenewalTerm", "s.renewal_term", INT),
        f("RenewalTermPeriodType", "s.renewal_term_period_type", P),
        f("RenewalSetting", "s.renewal_setting", P),
        f("AutoRenew", "s.auto_renew", B),
        f("ContractEffectiveDate", "s.contract_effective_date", DAY),
        f("ServiceActivationDate", "s.service_activation_date", DAY),
        f("ContractAcceptanceDate", "s.customer_acceptance_date", DAY),
        f("TermStartDate", "s.term_start_date", DAY, filterable=True),
        f("TermEndDate", "s.term_end_date", DAY, filterable=True),
        f("CancelledDate", "s.cancelled_date", DAY),
        f("IsInvoiceSeparate", "s.invoice_separately", B, label="Invoice Separately"),
        f("Notes", "s.notes"),
        key("OrderId", "s.order_id"),
        *audit("s"),
    ),
    relations=(
        Relation("Account", "Account", "accountid"),
        Relation("InvoiceOwner", "Account", "invoiceownerid"),
    ),
    expands=(
        Expand("account", "Account", "accountid", "id", many=False),
        Expand("invoiceowner", "Account", "invoiceownerid", "id", many=False, key="invoiceOwner"),
        Expand("rateplans", "RatePlan", "originalid", "subscriptionid", many=True),
    ),
)

RATE_PLAN = QueryObject(
    name="RatePlan",
    table="rateplan",
    path="rate-plans",
    source=(
        "rate_plans r JOIN subscriptions s"
        " ON s.tenant_id = r.tenant_id AND s.id = r.subscription_id"
    ),
    tenant="r.tenant_id",
    fields=(
        ident("r"),
        f("Name", "r.name", filterable=True),
        f("RatePlanNumber", "r.rate_plan_number"),
        key("SubscriptionId", "r.subscription_id"),
        key("ProductRatePlanId", "r.product_rate_plan_id"),
        key("ProductId", "r.product_id"),
        f("ProductName", "r.product_name"),
        f("AmendmentType", "r.last_change_type", P, label="Last Change Type"),
        f("RemovedDate", "r.removed_date", DAY),
        key("AccountId", "s.account_id"),
        *audit("r", updated=False),
    ),
    relations=(
        Relation("Subscription", "Subscription", "subscriptionid"),
        Relation("Account", "Account", "accountid"),
        Relation("ProductRatePlan", "ProductRatePlan", "productrateplanid"),
        Relation("Product", "Product", "productid"),
    ),
    expands=(
        Expand("rateplancharges", "RatePlanCharge", "id", "rateplanid", many=True),
        Expand("subscription", "Subscription", "subscriptionid", "originalid", many=False),
    ),
)

RATE_PLAN_CHARGE = QueryObject(
    name="RatePlanCharge",
    table="rateplancharge",
    path="rate-plan-charges",
    source=(
        "rate_plan_charges c JOIN subscriptions s"
        " ON s.tenant_id = c.tenant_id AND s.id = c.subscription_id"
    ),
    tenant="c.tenant_id",
    fields=(
        ident("c"),
        f("ChargeNumber", "c.charge_number", filterable=True),
        f("Name", "c.name"),
        f("Segment", "c.segment", INT),
        f("IsLastSegment", "c.is_last_segment", B),
        key("RatePlanId", "c.rate_plan_id"),
        key("SubscriptionId", "c.subscription_id"),
        key("ProductRatePlanChargeId", "c.product_rate_plan_charge_id"),
        f("ChargeType", "c.charge_type", P, filterable=True),
        f("ChargeModel", "c.charge_model", P),
        f("BillingPeriod", "c.billing_period", P),
        f("SpecificBillingPeriod", "c.specific_billing_period", INT),
        f("BillingTiming", "c.billing_timing", P),
        f("BillCycleDay", "c.bill_cycle_day", INT),
        f("TriggerEvent", "c.trigger_event", P),
        f("EndDateCondition", "c.end_date_condition", P),
        f("Quantity", "c.quantity", D),
        f("UOM", "c.uom", label="Unit of Measure"),
        f("Description", "c.description"),
        f("EffectiveStartDate", "c.effective_start_date", DAY),
        f("EffectiveEndDate", "c.effective_end_date", DAY),
        f("ChargedThroughDate", "c.charged_through_date", DAY),
        f("MRR", "c.mrr", D, label="MRR"),
        key("AccountId", "s.account_id"),
        *audit("c", updated=False),
    ),
    relations=(
        Relation("RatePlan", "RatePlan", "rateplanid"),
        Relation("Subscription", "Subscription", "subscriptionid"),
        Relation("Account", "Account", "accountid"),
        Relation("ProductRatePlanCharge", "ProductRatePlanCharge", "productrateplanchargeid"),
    ),
)

ORDER = QueryObject(
    name="Order",
    table="orders",
    path="orders",
    source="orders o",
    tenant="o.tenant_id",
    number="OrderNumber",
    fields=(
        ident("o"),
        f("OrderNumber", "o.order_number", filterable=True),
        key("AccountId", "o.account_id"),
        f("OrderDate", "o.order_date", DAY, filterable=True),
        f("Status", "o.status", P, filterable=True),
        f("Category", "o.category", P),
        f("Description", "o.description"),
        *audit("o", updated=False),
    ),
    relations=(Relation("Account", "Account", "accountid"),),
    expands=(
        Expand("account", "Account", "accountid", "id", many=False),
        Expand("orderactions", "OrderAction", "id", "orderid", many=True),
    ),
)

ORDER_ACTION = QueryObject(
    name="OrderAction",
    table="orderaction",
    path="order-actions",
    source=(
        "order_actions x LEFT JOIN subscriptions s"
        " ON s.tenant_id = x.tenant_id AND s.id = x.subscription_id"
    ),
    tenant="x.tenant_id",
    fields=(
        ident("x"),
        key("OrderId", "x.order_id"),
        f("Sequence", "x.sequence", INT),
        f("Type", "x.type", P, filterable=True),
        key("SubscriptionId", "s.version_id"),
        f("SubscriptionNumber", "x.subscription_number"),
        key("AccountId", "s.account_id"),
        key("InvoiceOwnerId", "s.invoice_owner_account_id"),
        *audit("x", updated=False),
    ),
    relations=(
        Relation("Order", "Order", "orderid"),
        Relation("Subscription", "Subscription", "subscriptionid"),
        Relation("SubscriptionOwnerAccount", "Account", "accountid"),
        Relation("InvoiceOwnerAccount", "Account", "invoiceownerid"),
    ),
    expands=(
        Expand("order", "Order", "orderid", "id", many=False),
        Expand("subscription", "Subscription", "subscriptionid", "id", many=False),
    ),
)

INVOICE = QueryObject(
    name="Invoice",
    table="invoice",
    path="invoices",
    source="invoices i",
    tenant="i.tenant_id",
    number="InvoiceNumber",
    fields=(
        ident("i"),
        f("InvoiceNumber", "i.invoice_number", filterable=True),
        key("AccountId", "i.account_id"),
        f("Status", "i.status", P, filterable=True),
        f("SourceType", "i.source_type", P),
        f("Currency", "i.currency", P),
        f("InvoiceDate", "i.invoice_date", DAY, filterable=True),
        f("DueDate", "i.due_date", DAY, filterable=True),
        f("PaymentTerm", "i.payment_term"),
        f("Amount", "i.amount", D, filterable=True),
        f("Balance", "i.balance", D, filterable=True),
        f("AutoPay", "i.auto_pay", B),
        f("Comments", "i.comments"),
        f("PostedDate", "i.posted_date", DT),
        key("BillRunId", "i.bill_run_id"),
        f("TargetDate", "i.target_date", DAY),
        *audit("i"),
    ),
    relations=(
        Relation("Account", "Account", "accountid"),
        Relation("BillRun", "BillingRun", "billrunid"),
    ),
    expands=(
        Expand("account", "Account", "accountid", "id", many=False),
        Expand("invoiceitems", "InvoiceItem", "id", "invoiceid", many=True),
    ),
)

INVOICE_ITEM = QueryObject(
    name="InvoiceItem",
    table="invoiceitem",
    path="invoice-items",
    source="invoice_items t JOIN invoices i ON i.tenant_id = t.tenant_id AND i.id = t.invoice_id",
    tenant="t.tenant_id",
    fields=(
        ident("t"),
        key("InvoiceId", "t.invoice_id"),
        key("AccountId", "i.account_id"),
        f("ChargeName", "t.charge_name"),
        f("ChargeNumber", "t.charge_number"),
        f("ChargeType", "t.charge_type", P),
        f("ChargeDate", "t.charge_date", DT),
        f("SKU", "t.sku", label="SKU"),
        f("UOM", "t.uom", label="Unit of Measure"),
        f("Quantity", "t.quantity", D),
        f("UnitPrice", "t.unit_price", D),
        f("ChargeAmount", "t.amount", D),
        f("Balance", "t.balance", D),
        f("ServiceStartDate", "t.service_start_date", DAY),
        f("ServiceEndDate", "t.service_end_date", DAY),
        f("TaxCode", "t.tax_code"),
        f("TaxMode", "t.tax_mode", P),
        key("SubscriptionId", "t.subscription_id"),
        key("RatePlanChargeId", "t.rate_plan_charge_id"),
        key("ProductRatePlanChargeId", "t.product_rate_plan_charge_id"),
        f("CreatedDate", "i.created_at", DT),
        f("UpdatedDate", "i.updated_at", DT, filterable=True),
    ),
    relations=(
        Relation("Invoice", "Invoice", "invoiceid"),
        Relation("Account", "Account", "accountid"),
        Relation("RatePlanCharge", "RatePlanCharge", "rateplanchargeid"),
    ),
    expands=(Expand("invoice", "Invoice", "invoiceid", "id", many=False),),
)


def memo(name: str, table: str, path: str, source: str, extra: tuple[Field, ...]) -> QueryObject:
    return QueryObject(
        name=name,
        table=table,
        path=path,
        source=f"{source} d",
        tenant="d.tenant_id",
        number="MemoNumber",
        fields=(
            ident("d"),
            f("MemoNumber", "d.memo_number", filterable=True),
            key("AccountId", "d.account_id"),
            f("Currency", "d.currency", P),
            f("TotalAmount", "d.amount", D, filterable=True),
            f("Status", "d.status", P, filterable=True),
            f("MemoDate", "d.memo_date", DAY, filterable=True),
            key("InvoiceId", "d.referred_invoice_id"),
            f("ReasonCode", "d.reason_code"),
            f("Comments", "d.comment"),
            f("PostedOn", "d.posted_date", DT),
            *extra,
            *audit("d"),
        ),
        relations=(
            Relation("Account", "Account", "accountid"),
            Relation("Invoice", "Invoice", "invoiceid"),
        ),
        expands=(Expand("account", "Account", "accountid", "id", many=False),),
    )


CREDIT_MEMO = memo(
    "CreditMemo",
    "creditmemo",
    "credit-memos",
    "credit_memos",
    (
        f("AppliedAmount", "d.applied_amount", D),
        f("RefundAmount", "d.refund_amount", D),
        f("UnappliedAmount", "d.amount - d.applied_amount - d.refund_amount", D),
    ),
)
DEBIT_MEMO = memo(
    "DebitMemo",
    "debitmemo",
    "debit-memos",
    "debit_memos",
    (f("Balance", "d.balance", D), f("DueDate", "d.due_date", DAY)),
)

PAYMENT = QueryObject(
    name="Payment",
    table="payment",
    path="payments",
    source="payments p",
    tenant="p.tenant_id",
    number="PaymentNumber",
    fields=(
        ident("p"),
        f("PaymentNumber", "p.payment_number", filterable=True),
        key("AccountId", "p.account_id"),
        f("Currency", "p.currency", P),
        f("Amount", "p.amount", D, filterable=True),
        f("AppliedAmount", "p.applied_amount", D),
        f("RefundAmount", "p.refund_amount", D),
        f("UnappliedAmount", "p.amount - p.applied_amount - p.refund_amount", D),
        f("Status", "p.status", P, filterable=True),
        f("Type", "p.type", P),
        f("EffectiveDate", "p.effective_date", DAY, filterable=True),
        f("PaymentMethodType", "p.payment_method_type"),
        f("ReferenceId", "p.reference_id", label="Reference ID"),
        f("Comment", "p.comment"),
        *audit("p"),
    ),
    relations=(Relation("Account", "Account", "accountid"),),
    expands=(Expand("account", "Account", "accountid", "id", many=False),),
)

REFUND = QueryObject(
    name="Refund",
    table="refund",
    path="refunds",
    source="refunds r",
    tenant="r.tenant_id",
    number="RefundNumber",
    fields=(
        ident("r"),
        f("RefundNumber", "r.refund_number", filterable=True),
        key("AccountId", "r.account_id"),
        f("SourceType", "r.source_type", P),
        key("PaymentId", "r.payment_id"),
        key("CreditMemoId", "r.credit_memo_id"),
        f("Amount", "r.amount", D, filterable=True),
        f("Status", "r.status", P, filterable=True),
        f("Type", "r.type", P),
        f("MethodType", "r.method_type"),
        f("RefundDate", "r.refund_date", DAY, filterable=True),
        f("ReasonCode", "r.reason_code"),
        f("ReferenceID", "r.reference_id", label="Reference ID"),
        f("Comment", "r.comment"),
        *audit("r", updated=False),
    ),
    relations=(
        Relation("Account", "Account", "accountid"),
        Relation("Payment", "Payment", "paymentid"),
        Relation("CreditMemo", "CreditMemo", "creditmemoid"),
    ),
    expands=(Expand("account", "Account", "accountid", "id", many=False),),
)


def application(name: str, table: str, path: str, source_type: str) -> QueryObject:
    """One row of the append-only application ledger (a negative amount is an unapply)."""
    source = "payments" if source_type == "Payment" else "credit_memos"
    source_key = "PaymentId" if source_type == "Payment" else "CreditMemoId"
    return QueryObject(
        name=name,
        table=table,
        path=path,
        source=(
            f"applications x JOIN {source} src ON src.tenant_id = x.tenant_id"
            f" AND src.id = x.source_id AND x.source_type = '{source_type}'"
        ),
        tenant="x.tenant_id",
        fields=(
            ident("x"),
            key(source_key, "x.source_id"),
            key("InvoiceId", "CASE WHEN x.target_type = 'Invoice' THEN x.target_id END"),
            key("DebitMemoId", "CASE WHEN x.target_type = 'DebitMemo' THEN x.target_id END"),
            key("AccountId", "src.account_id"),
            f("AppliedAmount", "x.amount", D),
            f("EffectiveDate", "x.effective_date", DAY, filterable=True),
            *audit("x", updated=False),
        ),
        relations=(
            Relation(source_type, source_type, source_key.lower()),
            Relation("Invoice", "Invoice", "invoiceid"),
            Relation("DebitMemo", "DebitMemo", "debitmemoid"),
            Relation("Account", "Account", "accountid"),
        ),
    )


PAYMENT_APPLICATION = application(
    "PaymentApplication", "paymentapplication", "payment-applications", "Payment"
)
CREDIT_MEMO_APPLICATION = application(
    "CreditMemoApplication", "creditmemoapplication", "credit-memo-applications", "CreditMemo"
)


def catalog_dates(alias: str) -> tuple[Field, ...]:
    return (
        f("EffectiveStartDate", f"{alias}.effective_start_date", DAY),
        f("EffectiveEndDate", f"{alias}.effective_end_date", DAY),
    )


PRODUCT = QueryObject(
    name="Product",
    table="product",
    path="products",
    source="products p",
    tenant="p.tenant_id",
    number="ProductNumber",
    fields=(
        ident("p"),
        f("Name", "p.name", filterable=True),
        f("SKU", "p.sku", label="SKU", filterable=True),
        f("ProductNumber", "p.product_number", filterable=True),
        f("Category", "p.category", P),
        f("Description", "p.description"),
        *catalog_dates("p"),
        *audit("p"),
    ),
    expands=(Expand("productrateplans", "ProductRatePlan", "id", "productid", many=True),),
)

PRODUCT_RATE_PLAN = QueryObject(
    name="ProductRatePlan",
    table="productrateplan",
    path="product-rate-plans",
    source="product_rate_plans r",
    tenant="r.tenant_id",
    number="ProductRatePlanNumber",
    fields=(
        ident("r"),
        key("ProductId", "r.product_id"),
        f("ProductRatePlanNumber", "r.product_rate_plan_number", filterable=True),
        f("Name", "r.name", filterable=True),
        f("Description", "r.description"),
        *catalog_dates("r"),
        *audit("r"),
    ),
    relations=(Relation("Product", "Product", "productid"),),
    expands=(
        Expand("product", "Product", "productid", "id", many=False),
        Expand(
            "productrateplancharges",
            "ProductRatePlanCharge",
            "id",
            "productrateplanid",
            many=True,
        ),
    ),
)

PRODUCT_RATE_PLAN_CHARGE = QueryObject(
    name="ProductRatePlanCharge",
    table="productrateplancharge",
    path="product-rate-plan-charges",
    source="product_rate_plan_charges c",
    tenant="c.tenant_id",
    number="ProductRatePlanChargeNumber",
    fields=(
        ident("c"),
        key("ProductRatePlanId", "c.product_rate_plan_id"),
        f("ProductRatePlanChargeNumber", "c.product_rate_plan_charge_number", filterable=True),
        f("Name", "c.name", filterable=True),
        f("ChargeType", "c.charge_type", P, filterable=True),
        f("ChargeModel", "c.charge_model", P),
        f("BillingPeriod", "c.billing_period", P),
        f("SpecificBillingPeriod", "c.specific_billing_period", INT),
        f("BillingTiming", "c.billing_timing", P),
        f("BillCycleType", "c.bill_cycle_type", P),
        f("BillCycleDay", "c.bill_cycle_day", INT),
        f("TriggerEvent", "c.trigger_event", P),
        f("EndDateCondition", "c.end_date_condition", P),
        f("UpToPeriods", "c.up_to_periods", INT),
        f("UpToPeriodsType", "c.up_to_periods_type", P),
        f("DefaultQuantity", "c.default_quantity", D),
        f("UOM", "c.uom", label="Unit of Measure"),
        f("Description", "c.description"),
        *audit("c"),
    ),
    relations=(Relation("ProductRatePlan", "ProductRatePlan", "productrateplanid"),),
    expands=(Expand("productrateplan", "ProductRatePlan", "productrateplanid", "id", many=False),),
)

BILLING_RUN = QueryObject(
    name="BillingRun",
    table="billingrun",
    path="billing-runs",
    source="bill_runs b",
    tenant="b.tenant_id",
    number="BillRunNumber",
    label="Bill Run",
    fields=(
        ident("b"),
        f("BillRunNumber", "b.bill_run_number", filterable=True),
        f("Name", "b.name"),
        f("Status", "b.status", P, filterable=True),
        f("TargetDate", "b.target_date", DAY, filterable=True),
        f("InvoiceDate", "b.invoice_date", DAY),
        f("AutoPost", "b.auto_post", B),
        key("AccountId", "b.account_id"),
        f("BillCycleDay", "b.bill_cycle_day"),
        f("NumberOfInvoices", "b.invoice_count", INT),
        f("ErrorMessage", "b.error"),
        *audit("b"),
    ),
    relations=(Relation("Account", "Account", "accountid"),),
)

OBJECTS: tuple[QueryObject, ...] = (
    ACCOUNT,
    CONTACT,
    SUBSCRIPTION,
    RATE_PLAN,
    RATE_PLAN_CHARGE,
    ORDER,
    ORDER_ACTION,
    INVOICE,
    INVOICE_ITEM,
    CREDIT_MEMO,
    DEBIT_MEMO,
    PAYMENT,
    REFUND,
    PAYMENT_APPLICATION,
    CREDIT_MEMO_APPLICATION,
    PRODUCT,
    PRODUCT_RATE_PLAN,
    PRODUCT_RATE_PLAN_CHARGE,
    BILLING_RUN,
)
_BY_NAME = {o.name.lower(): o for o in OBJECTS}
_BY_TABLE = {o.table: o for o in OBJECTS}
_BY_PATH = {o.path: o for o in OBJECTS}
_WITHOUT_RESELLER_ACCOUNT = {
    o.name: replace(o, fields=tuple(x for x in o.fields if not x.reseller_account))
    for o in OBJECTS
    if any(x.reseller_account for x in o.fields)
}


def by_name(name: str) -> QueryObject | None:
    """The object with API name `name`, in any case (ZOQL, Export ZOQL, describe)."""
    return _BY_NAME.get(name.lower())


def as_seen(obj: QueryObject, *, reseller_account_enabled: bool) -> QueryObject:
    """`obj` as a tenant sees it: without the Reseller Account feature's fields while the
    tenant has the feature disabled."""
    if reseller_account_enabled:
        return obj
    return _WITHOUT_RESELLER_ACCOUNT.get(obj.name, obj)


def has_reseller_account_fields(obj: QueryObject) -> bool:
    return obj.name in _WITHOUT_RESELLER_ACCOUNT


def by_table(table: str) -> QueryObject | None:
    """The object behind Data Query table `table`, in any case (`Orders`, `invoiceitem`)."""
    return _BY_TABLE.get(table.lower())


def by_path(path: str) -> QueryObject | None:
    """The object served at `/object-query/{path}`."""
    return _BY_PATH.get(path.lower())
