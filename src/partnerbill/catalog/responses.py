"""Documented answers of the catalog routes (OpenAPI only; see `core.responses`). The CRUD object
API (`/v1/object/...`) answers in PascalCase."""

from datetime import date

from partnerbill.core.responses import Documented, Money, Succeeded


class CreatedObject(Documented):
    Id: str
    Success: bool


class ObjectProduct(Documented):
    Id: str
    Name: str
    SKU: str | None = None
    ProductNumber: str | None = None
    Category: str | None = None
    Description: str | None = None
    EffectiveStartDate: date | None = None
    EffectiveEndDate: date | None = None


class ObjectProductRatePlan(Documented):
    Id: str
    Name: str
    ProductId: str
    ProductRatePlanNumber: str | None = None
    Description: str | None = None
    EffectiveStartDate: date | None = None
    EffectiveEndDate: date | None = None


class ObjectTier(Documented):
    Currency: str
    Tier: int | None = None
    StartingUnit: Money | None = None
    EndingUnit: Money | None = None
    Price: Money
    PriceFormat: str | None = None


class ObjectTierData(Documented):
    ProductRatePlanChargeTier: list[ObjectTier]


class ObjectProductRatePlanCharge(Documented):
    Id: str
    ProductRatePlanId: str
    ProductRatePlanChargeNumber: str | None = None
    Name: str
    ChargeType: str
    ChargeModel: str
    BillingPeriod: str | None = None
    BillCycleDay: int | None = None
    UpToPeriods: int | None = None
    DefaultQuantity: Money | None = None
    UOM: str | None = None
    ProductRatePlanChargeTierData: ObjectTierData


class Pricing(Documented):
    currency: str
    price: Money | None = None
    tiers: list[Documented] | None = None


class ProductRatePlanCharge(Documented):
    id: str
    productRatePlanChargeNumber: str | None = None
    name: str
    type: str
    model: str
    description: str | None = None
    billingPeriod: str | None = None
    upToPeriods: int | None = None
    defaultQuantity: Money | None = None
    uom: str | None = None
    pricing: list[Pricing]
    pricingSummary: list[str]


class ProductRatePlan(Documented):
    id: str
    productRatePlanNumber: str | None = None
    name: str
    description: str | None = None
    effectiveStartDate: date | None = None
    effectiveEndDate: date | None = None
    status: str
    productRatePlanCharges: list[ProductRatePlanCharge]


class ProductRatePlanAnswer(Succeeded, ProductRatePlan):
    pass


class ProductRatePlans(Succeeded):
    productRatePlans: list[ProductRatePlan]
    nextPage: str | None = None


class Product(Documented):
    id: str
    sku: str | None = None
    productNumber: str | None = None
    name: str
    category: str | None = None
    description: str | None = None
    effectiveStartDate: date | None = None
    effectiveEndDate: date | None = None
    productRatePlans: str


class ProductAnswer(Succeeded, Product):
    pass


class Products(Succeeded):
    products: list[Product]
    nextPage: str | None = None
