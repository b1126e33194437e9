"""An account's contacts by contact id (`/v1/contacts`): the bill-to, the sold-to and the others."""
