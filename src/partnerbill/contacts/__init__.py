"""An account's contacts read, edited and deleted by contact id (`/v1/contacts/{contactId}`)."""
