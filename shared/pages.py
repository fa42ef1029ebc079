"""Plain HTML pages for people (the self-service return), escaped throughout.

Every piece of text goes through `text` or the block helpers, which escape it; only `Html`
values, built here, are inserted as they are. A page is a heading, a few paragraphs and links,
readable without styles or scripts, in the spirit of a company intranet page: what happened,
for which product, what to do next.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from shared.services.selfservice import (
    HOLDS_LICENSE,
    ROUTE,
    ProductOutcome,
    SelfServiceResult,
    UnknownProduct,
    Verdict,
)
from shared.services.snapshot import product_key

#: How Atlassian names its products on its own pages; other keys are shown as they are.
PRODUCT_NAMES = {
    "confluence": "Confluence",
    "jira-software": "Jira",
    "jira-servicedesk": "Jira Service Management",
    "jira-product-discovery": "Jira Product Discovery",
    "jira-work-management": "Jira Work Management",
    "statuspage": "Statuspage",
    "opsgenie": "Opsgenie",
}

#: Whom to ask when no SEATWARDEN_HELP_CONTACT is set.
DEFAULT_CONTACT = "your Atlassian administrators"

_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.5;color:#172b4d;"
    "max-width:40rem;margin:2rem auto;padding:0 1rem}"
    "h1{font-size:1.5rem}a{color:#0052cc}footer{margin-top:2rem;color:#5e6c84;font-size:.875rem}"
)


class Html(str):
    """Markup that is already escaped: the only kind of string a page inserts as it is."""


def text(value: str) -> Html:
    return Html(html.escape(value, quote=True))


def _join(parts: Iterable[str]) -> Html:
    return Html("".join(p if isinstance(p, Html) else text(p) for p in parts))


def para(*parts: str) -> Html:
    """A paragraph; plain strings are escaped, `Html` parts are kept."""
    return Html(f"<p>{_join(parts)}</p>")


def link(href: str, label: str) -> Html:
    return Html(f'<a href="{html.escape(href, quote=True)}">{text(label)}</a>')


def bullets(items: Iterable[str]) -> Html:
    return Html("<ul>" + "".join(f"<li>{_join([i])}</li>" for i in items) + "</ul>")


@dataclass(frozen=True)
class Page:
    status: int
    title: str
    body: tuple[Html, ...]

    def render(self) -> str:
        return (
            '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{text(self.title)} · Seatwarden</title>\n<style>{_STYLE}</style>\n</head>\n"
            f"<body>\n<main>\n<h1>{text(self.title)}</h1>\n"
            + "\n".join(self.body)
            + "\n</main>\n</body>\n</html>\n"
        )


def product_name(key: str) -> str:
    return PRODUCT_NAMES.get(product_key(key), key)


def contact_html(contact: str | None) -> Html:
    """Whom to ask: an address becomes a mail link, anything else is shown as it is."""
    who = (contact or "").strip() or DEFAULT_CONTACT
    if "@" in who and " " not in who and "<" not in who:
        return link(f"mailto:{who}", who)
    return text(who)


def sign_in_url(return_to: str) -> str:
    """App Service authentication's sign-in endpoint, coming back to `return_to` (a path).

    https://learn.microsoft.com/azure/app-service/configure-authentication-customize-sign-in-out
    """
    path = return_to if return_to.startswith("/") and not return_to.startswith("//") else ROUTE
    return "/.auth/login/aad?" + urlencode({"post_login_redirect_uri": path}, quote_via=quote)


def relicense_url(product: str) -> str:
    return f"{ROUTE}?" + urlencode({"product": product_key(product)})


def _when(at: datetime | None) -> str:
    return at.strftime("%d %B %Y at %H:%M UTC") if at else "just now"


# -- pages before the service runs ---------------------------------------------------------------


def not_configured(contact: str | None) -> Page:
    return Page(
        503,
        "Self-service is not set up",
        (
            para(
                "Sign-in with Microsoft Entra ID is not switched on for this app, so this page "
                "cannot tell who you are. Nothing was changed."
            ),
            para(
                "Ask ", contact_html(contact), " to give you the license, or to set up the self-service page."
            ),
        ),
    )


def not_signed_in(contact: str | None, return_to: str) -> Page:
    return Page(
        401,
        "Please sign in",
        (
            para("This page gives your Atlassian licenses back, and it needs to know who you are first."),
            para(link(sign_in_url(return_to), "Sign in with your work account"), "."),
            para("If signing in does not work, ask ", contact_html(contact), "."),
        ),
    )


def bad_principal(contact: str | None, return_to: str) -> Page:
    return Page(
        400,
        "Your sign-in could not be read",
        (
            para("Your sign-in details reached Seatwarden damaged, so nothing was changed."),
            para(
                link(sign_in_url(return_to), "Sign in again"),
                " and open the link from your email once more. If this keeps happening, ask ",
                contact_html(contact),
                ".",
            ),
        ),
    )


def unknown_product(error: UnknownProduct, contact: str | None) -> Page:
    managed = [product_name(p) for p in error.known]
    return Page(
        404,
        "Seatwarden does not manage that product",
        (
            para(f"There is no product called “{error.product}” here. Nothing was changed."),
            para("Seatwarden manages: ", ", ".join(managed) + "." if managed else "no products yet."),
            para(
                link(ROUTE, "See what Seatwarden can give you back"), ", or ask ", contact_html(contact), "."
            ),
        ),
    )


def try_again(contact: str | None) -> Page:
    return Page(
        503,
        "Please try again in a minute",
        (
            para(
                "Seatwarden could not finish talking to Atlassian or Microsoft just now, "
                "so nothing was changed."
            ),
            para("Reload this page in a minute. If it keeps happening, ask ", contact_html(contact), "."),
        ),
    )


# -- the service's answer -------------------------------------------------------------------------

#: The answer's HTTP status per verdict: done or nothing to do (200); refused (403); broken (502).
STATUS = {
    Verdict.RELICENSED: 200,
    Verdict.GRANTED: 200,
    Verdict.AVAILABLE: 200,
    Verdict.PENDING: 202,
    Verdict.ALREADY_LICENSED: 200,
    Verdict.WAITING_FOR_SEAT: 200,
    Verdict.NOT_ENTITLED: 403,
    Verdict.OUT_OF_SCOPE: 403,
    Verdict.MANAGED_IN_ENTRA: 403,
    Verdict.REPORT_ONLY: 403,
    Verdict.FAILED: 502,
}


#: Per verdict, the page's title and paragraphs. `{name}` is the product, `{when}` the time it
#: was done, `{why}` the outcome's detail; `{contact}` becomes whom to ask (a mail link).
MESSAGES: dict[Verdict, tuple[str, tuple[str, ...]]] = {
    Verdict.RELICENSED: (
        "Your {name} license is back",
        (
            "Seatwarden gave you your {name} license back on {when}. You can use {name} again now.",
            "It had been taken away because you had not used {name} for a while. Using it keeps it.",
        ),
    ),
    Verdict.GRANTED: (
        "You have a {name} license now",
        ("Seatwarden gave you a {name} license on {when}. You can use {name} now.",),
    ),
    Verdict.PENDING: (
        "Your {name} license is on its way",
        (
            "Atlassian did not answer in time, so Seatwarden has queued the change; "
            "it is usually done within a minute.",
            "Reload this page to check. If it still is not done in an hour, ask {contact}.",
        ),
    ),
    Verdict.ALREADY_LICENSED: (
        "You already have a {name} license",
        (
            "Nothing needed doing: your Atlassian account holds a {name} license.",
            "If {name} still says you have no access, sign out of Atlassian and in again, or ask {contact}.",
        ),
    ),
    Verdict.WAITING_FOR_SEAT: (
        "No {name} license is free right now",
        (
            "Every {name} license your organization pays for is in use, "
            "so yours could not be given back yet.",
            "Open this page again later, or ask {contact} to free a license.",
        ),
    ),
    Verdict.NOT_ENTITLED: (
        "You are not entitled to {name}",
        (
            "Seatwarden gives {name} licenses to the people Microsoft Entra ID lists for {name}, "
            "and you are not among them, so nothing was changed.",
            "If you need {name} for your work, ask {contact} to add you. Once they have, this page "
            "gives you the license; a change can take until the next night to reach Seatwarden.",
        ),
    ),
    Verdict.OUT_OF_SCOPE: (
        "Seatwarden does not manage your {name} license",
        ("Nothing was changed: {why}.", "Ask {contact}."),
    ),
    Verdict.MANAGED_IN_ENTRA: (
        "Your {name} license comes from Microsoft Entra ID",
        (
            "{name} licenses here are given by a group in Microsoft Entra ID, "
            "which Seatwarden cannot change.",
            "Ask {contact} to add you to that group.",
        ),
    ),
    Verdict.REPORT_ONLY: (
        "Seatwarden only reports on {name} for now",
        ("It changes no {name} licenses yet, so it cannot give yours back.", "Ask {contact}."),
    ),
    Verdict.FAILED: (
        "Your {name} license could not be given back",
        (
            "Atlassian refused the change ({why}).",
            "Ask {contact}; they can see what happened in Seatwarden's audit trail.",
        ),
    ),
    Verdict.AVAILABLE: ("You can have your {name} license back", ()),
}

#: `{why}` where an outcome carries no detail.
_NO_DETAIL = {
    Verdict.OUT_OF_SCOPE: "its policy does not cover your account",
    Verdict.FAILED: "no reason given",
}


def _outcome(o: ProductOutcome, contact: Html) -> tuple[str, tuple[Html, ...]]:
    """A title and paragraphs for one product's outcome."""
    title, paragraphs = MESSAGES[o.verdict]
    values = {
        "name": product_name(o.product),
        "when": _when(o.at),
        "why": o.detail or _NO_DETAIL.get(o.verdict, ""),
    }
    body = []
    for template in paragraphs:
        before, found, after = template.partition("{contact}")
        parts: list[str] = [before.format(**values)]
        if found:
            parts += [contact, after.format(**values)]
        body.append(para(*parts))
    if o.verdict is Verdict.AVAILABLE:
        body.append(para(link(relicense_url(o.product), f"Get {values['name']} back")))
    return title.format(**values), tuple(body)


def result_page(result: SelfServiceResult, contact: str | None) -> Page:
    who = Html(f"<footer>{_join(['Signed in as ', result.principal.label, '.'])}</footer>")
    ask = contact_html(contact)
    if result.unknown is not None:
        return Page(
            403,
            "Seatwarden could not find you",
            (
                para(f"Nothing was changed: {result.unknown}."),
                para("Ask ", ask, " to check that your Atlassian account uses your work email address."),
                who,
            ),
        )
    if result.asked is None:
        return _choices(result, ask, who)
    if len(result.outcomes) == 1:
        title, body = _outcome(result.outcomes[0], ask)
        return Page(STATUS[result.outcomes[0].verdict], title, (*body, who))
    # One product under several policies: one section each; the best outcome sets the status.
    sections: list[Html] = []
    for o in result.outcomes:
        title, body = _outcome(o, ask)
        sections += [Html(f"<h2>{text(title)}</h2>"), *body]
    status = min(STATUS[o.verdict] for o in result.outcomes)
    return Page(status, f"Your {product_name(result.outcomes[0].product)} license", (*sections, who))


def _choices(result: SelfServiceResult, ask: Html, who: Html) -> Page:
    """No product asked: what can be given back (a link each) and what the person holds."""
    available = [o for o in result.outcomes if o.verdict is Verdict.AVAILABLE]
    held = sorted({product_name(o.product) for o in result.outcomes if o.verdict in HOLDS_LICENSE})
    body: list[Html] = []
    if available:
        body.append(para("You can have these licenses back now, one at a time:"))
        body.append(
            bullets(
                [link(relicense_url(o.product), f"Get {product_name(o.product)} back") for o in available]
            )
        )
    else:
        body.append(para("There is no license Seatwarden can give you back right now."))
    if held:
        body.append(para("You already have: ", ", ".join(held) + "."))
    body.append(para("For anything else, ask ", ask, "."))
    body.append(who)
    return Page(200, "Your Atlassian licenses", tuple(body))
