"""Value vocabularies: the canonical values of enumerated fields and the aliases accepted for them.

Values are matched after `vocab_key`: trimmed, case-folded, spaces and hyphens turned into "_"
("Opted In", "opted-in" and "OPTED_IN" are the same). Anything else is invalid (rule named after the field).

order status:    completed <- complete, paid, fulfilled
                 refunded  <- refund
                 cancelled <- canceled, void, voided
                 (pending, on-hold etc. are not completed orders and are rejected, not guessed)
event_type:      page_view, product_view, cart_add, checkout, purchase, email_open, email_click, unsubscribe,
                 with the common tracking names listed below (view_item, add_to_cart, open, click, ...)
consent status:  opted_in <- opt_in, optin, subscribed, granted, yes, true
                 opted_out <- opt_out, optout, unsubscribed, withdrawn, revoked, no, false
channel:         email <- e_mail, mail (the only channel segflow manages; empty or absent means email)
lawful_basis:    consent, legitimate_interest (<- legitimate_interests, li), contract
booleans:        true/false, yes/no, y/n, t/f, 1/0, on/off
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-]+")


def vocab_key(text: str) -> str:
    return _SEPARATORS.sub("_", unicodedata.normalize("NFKC", text).strip().casefold())


def _table(canonical_to_aliases: dict[str, list[str]]) -> dict[str, str]:
    table = {}
    for canonical, aliases in canonical_to_aliases.items():
        for alias in [canonical, *aliases]:
            table[vocab_key(alias)] = canonical
    return table


ORDER_STATUS = _table(
    {
        "completed": ["complete", "paid", "fulfilled"],
        "refunded": ["refund"],
        "cancelled": ["canceled", "void", "voided"],
    }
)

EVENT_TYPE = _table(
    {
        "page_view": ["pageview", "page", "view_page"],
        "product_view": ["productview", "view_item", "view_product", "item_view"],
        "cart_add": ["add_to_cart", "addtocart", "cart_addition"],
        "checkout": ["begin_checkout", "checkout_started", "start_checkout"],
        "purchase": ["order", "order_completed", "transaction"],
        "email_open": ["open", "opened", "email_opened"],
        "email_click": ["click", "clicked", "email_clicked"],
        "unsubscribe": ["unsubscribed", "email_unsubscribe", "opt_out"],
    }
)

CONSENT_STATUS = _table(
    {
        "opted_in": ["opt_in", "optin", "optedin", "subscribed", "granted", "yes", "true"],
        "opted_out": ["opt_out", "optout", "optedout", "unsubscribed", "withdrawn", "revoked", "no", "false"],
    }
)

CHANNEL = _table({"email": ["e_mail", "mail"]})

LAWFUL_BASIS = _table(
    {
        "consent": [],
        "legitimate_interest": ["legitimate_interests", "li"],
        "contract": [],
    }
)

BOOLEAN = {
    **{key: True for key in ("true", "t", "yes", "y", "1", "on")},
    **{key: False for key in ("false", "f", "no", "n", "0", "off")},
}
