"""AWS Signature Version 4 verification, on the server side of the SES APIs.

Role: tell whether a request was signed by the holder of an access key's secret, exactly as SES does,
for the ``Authorization`` header form and for presigned URLs (``X-Amz-Algorithm=…`` in the query).
``parse`` reads and checks the claims without any secret (so the caller can look the key up);
``verify`` recomputes the canonical request and the string to sign and compares in constant time.

Invariants:
- Canonicalization mirrors botocore's signer (``botocore.auth.SigV4Auth``/``SigV4QueryAuth``) byte for
  byte for non-S3 services: the path *as sent* is normalized and percent-encoded once more (so it is
  encoded twice), query names and values are decoded and re-encoded with only RFC 3986 unreserved
  characters left bare, header values are trimmed with runs of spaces collapsed.
- The body is always hashed by us: a client-supplied ``X-Amz-Content-Sha256`` is never trusted, so a
  replayed signature cannot carry another body. ``UNSIGNED-PAYLOAD`` (S3's alone) is never accepted.
- Signatures are compared with ``hmac.compare_digest``; error messages never reveal the expected one.
- Errors use the codes and wording of AWS's own front end (the one SES v1 shares with SQS, SNS and STS):
  see the AWS guide "Troubleshoot Signature Version 4 signing for AWS API requests"
  (docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-troubleshooting.html) and recorded responses.
  A stale or future ``X-Amz-Date`` is ``SignatureDoesNotMatch`` ("Signature expired: …"), not
  ``RequestExpired``, for query-protocol services.

Steps cited below refer to the AWS SigV4 guide "Create a signed AWS API request" (task 1: canonical
request, task 2: hash it, task 3: string to sign, task 4: signing key, task 5: signature).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import re
from collections.abc import Container
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_plus, unquote_to_bytes

from sesame.awsapi import errors
from sesame.awsapi.messages import AwsRequest

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
# botocore signs SES as "ses" ("email" is SES's endpoint prefix), and Sesame's own SNS as "sns".
SERVICES = frozenset({"ses", "email", "sns"})
MAX_SKEW = datetime.timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 604800  # seven days: a SigV4 signing key is only valid that long
_ISO_BASIC = "%Y%m%dT%H%M%SZ"
_UNRESERVED = "-_.~"  # RFC 3986 §2.3, besides ASCII letters and digits (always safe for quote())
_SEPARATORS = re.compile(r"[,\s]+")
_BASIC_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_PRESIGN_REQUIRED = ("Algorithm", "Credential", "Signature", "SignedHeaders", "Date")  # X-Amz-…

MSG_MISSING_TOKEN = "Request is missing Authentication Token"
MSG_NO_DATE = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
MSG_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True)
class SignedRequest:
    access_key_id: str
    date: str  # yyyymmdd from the credential scope
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    amz_date: datetime.datetime  # from X-Amz-Date (or Date header), tz-aware UTC
    presigned: bool
    expires: int | None  # X-Amz-Expires for presigned URLs

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


def access_key_id(req: AwsRequest) -> str | None:
    """The access key id a request claims (Authorization header or presigned query), unverified."""
    auth = req.headers.get("authorization")
    if auth:
        match = re.search(r"Credential=([^/,\s]*)", auth)
        return (match.group(1) or None) if match else None
    credential = _first_values(req.query_string).get("X-Amz-Credential")
    return (credential.split("/", 1)[0] or None) if credential else None


def parse(req: AwsRequest, regions: Container[str] | None = None) -> SignedRequest:
    """Read the signature claims, checking them in the order AWS does.

    Raises MissingAuthenticationToken (no credential at all), IncompleteSignature (malformed header or
    query, bad date format, unsupported algorithm, credential without five parts) and, as AWS does,
    SignatureDoesNotMatch when the credential scope itself is wrong (a region not in ``regions`` or
    empty, service, terminator, date).
    """
    auth = req.headers.get("authorization")
    query = _first_values(req.query_string)
    if auth and "X-Amz-Algorithm" in query:
        raise errors.SignatureDoesNotMatch(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
        )
    if "X-Amz-Algorithm" in query:
        return _parse_presigned(query, regions)
    # A header of another scheme (SigV2 "AWS key:sig", "Bearer …") is no SigV4 credential at all.
    if not auth or not auth.strip().startswith("AWS4-"):
        raise errors.MissingAuthenticationToken(MSG_MISSING_TOKEN)
    algorithm, _, rest = auth.strip().partition(" ")
    fields: dict[str, str] = {}
    for token in _SEPARATORS.split(rest):  # AWS takes commas and/or spaces between components
        if not token:
            continue
        key, equals, value = token.partition("=")
        if not equals:
            raise errors.IncompleteSignature(
                f"'{token}' not a valid key=value pair (missing equal-sign) in Authorization header: "
                f"'{auth}'."
            )
        fields.setdefault(key, value)
    problems = [
        f"Authorization header requires '{name}' parameter. "
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    amz_date, http_date = req.headers.get("x-amz-date"), req.headers.get("date")
    if not amz_date and not http_date:
        problems.append(MSG_NO_DATE)
    if problems:
        raise errors.IncompleteSignature("".join(problems) + f"Authorization={auth}")
    # X-Amz-Date wins over Date (task 1: "the x-amz-date header … or the Date header").
    stamp = _parse_basic_date(amz_date) if amz_date else _parse_http_date(http_date or "")
    credential, signed_headers = fields["Credential"], fields["SignedHeaders"]
    return _claims(algorithm, credential, signed_headers, fields["Signature"], stamp, regions)


def verify(
    req: AwsRequest, signed: SignedRequest, secret_access_key: str, now: datetime.datetime | None = None
) -> None:
    """Check the request's age, then recompute its signature; raise SignatureDoesNotMatch if either fails."""
    now = now or datetime.datetime.now(datetime.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    _check_time(signed, now)
    key = signing_key(secret_access_key, signed.date, signed.region, signed.service)
    # Task 1's payload hash is always the body's own, computed here, presigned URLs included:
    # UNSIGNED-PAYLOAD is S3's alone, and SES answers a URL signed over it as any other mismatch.
    canonical = canonical_request(req, signed, hashlib.sha256(req.body).hexdigest())
    to_sign = string_to_sign(signed, canonical)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()  # task 5
    if not hmac.compare_digest(expected.encode(), signed.signature.encode()):
        # SES answers with the canonical request and string to sign it computed, so clients can diff.
        raise errors.SignatureDoesNotMatch(
            f"{MSG_MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
            f"The String-to-Sign should have been\n'{to_sign}'\n"
        )


@functools.lru_cache(maxsize=1024)
def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """Task 4: the signing key, derived from the secret and the request's own scope. It changes once a
    day per key and region, so it is remembered: four HMACs saved on every request."""
    key = f"AWS4{secret_access_key}".encode()
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_request(req: AwsRequest, signed: SignedRequest, payload_hash: str) -> str:
    """Task 1: method, canonical URI, canonical query, canonical headers, signed headers, payload hash."""
    skip = "X-Amz-Signature" if signed.presigned else None  # presigned: every auth param but the signature
    headers = "".join(
        f"{name}:{' '.join(req.headers.get(name, '').split())}\n" for name in signed.signed_headers
    )
    return "\n".join(
        [
            req.method.upper(),
            canonical_uri(req.raw_path),
            canonical_query(req.query_string, skip),
            headers,
            ";".join(signed.signed_headers),
            payload_hash,
        ]
    )


def canonical_uri(raw_path: str) -> str:
    """The path as sent, dot segments and empty segments removed, percent-encoded again (non-S3 rule)."""
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":  # RFC 3986 §5.2.4
            if segments:
                segments.pop()
        elif segment and segment != ".":  # AWS also drops empty segments ("//")
            segments.append(segment)
    path = "/" + "/".join(segments) + ("/" if segments and raw_path.endswith("/") else "")
    return quote(path, safe="/~")


def canonical_query(query_string: str, skip: str | None = None) -> str:
    """Sorted by encoded name then value; blank values kept as ``name=``; bytes re-encoded exactly.

    A literal "+" is a space, as in form encoding: botocore's own preparer sends params that way (and
    signs them as %20), and a "+" meant literally always arrives encoded as %2B.
    """
    pairs = sorted(
        (_encode(name), _encode(value))
        for name, _, value in (piece.partition("=") for piece in query_string.split("&") if piece)
        if skip is None or unquote_plus(name) != skip
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def _encode(raw: str) -> str:
    return quote(unquote_to_bytes(raw.replace("+", " ")), safe=_UNRESERVED)


def string_to_sign(signed: SignedRequest, canonical: str) -> str:
    """Tasks 2 and 3: algorithm, request date-time, credential scope, hash of the canonical request."""
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return "\n".join([ALGORITHM, signed.amz_date.strftime(_ISO_BASIC), signed.scope, digest])


def _check_time(signed: SignedRequest, now: datetime.datetime) -> None:
    stamp, fmt = signed.amz_date, _ISO_BASIC
    if stamp > now + MAX_SKEW:
        raise errors.SignatureDoesNotMatch(
            f"Signature not yet current: {stamp:{fmt}} is still later than {now + MAX_SKEW:{fmt}} "
            f"({now:{fmt}} + 15 min.)"
        )
    # A presigned URL lives for X-Amz-Expires seconds; anything else for the 15-minute skew window.
    window = MAX_SKEW if signed.expires is None else datetime.timedelta(seconds=signed.expires)
    if stamp < now - window:
        seconds = int(window.total_seconds())
        span = f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} sec"
        raise errors.SignatureDoesNotMatch(
            f"Signature expired: {stamp:{fmt}} is now earlier than {now - window:{fmt}} "
            f"({now:{fmt}} - {span}.)"
        )


def _parse_presigned(query: dict[str, str], regions: Container[str] | None) -> SignedRequest:
    missing = [
        f"AWS query-string parameters must include 'X-Amz-{name}'. "
        for name in _PRESIGN_REQUIRED
        if not query.get(f"X-Amz-{name}")
    ]
    if missing:
        raise errors.IncompleteSignature("".join(missing) + "Re-examine the query-string parameters.")
    stamp = _parse_basic_date(query["X-Amz-Date"])
    expires = None
    if "X-Amz-Expires" in query:
        raw = query["X-Amz-Expires"]
        if not re.fullmatch(r"-?[0-9]+", raw):
            raise errors.IncompleteSignature("X-Amz-Expires should be a number")
        expires = int(raw)
        if expires < 0:
            raise errors.IncompleteSignature("X-Amz-Expires must be non-negative")
        if expires > MAX_PRESIGN_EXPIRES:
            raise errors.IncompleteSignature(
                f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}"
            )
    return _claims(
        query["X-Amz-Algorithm"],
        query["X-Amz-Credential"],
        query["X-Amz-SignedHeaders"],
        query["X-Amz-Signature"],
        stamp,
        regions,
        presigned=True,
        expires=expires,
    )


def _claims(
    algorithm: str,
    credential: str,
    signed_headers: str,
    signature: str,
    stamp: datetime.datetime,
    regions: Container[str] | None,
    presigned: bool = False,
    expires: int | None = None,
) -> SignedRequest:
    names = [name.strip().lower() for name in signed_headers.split(";") if name.strip()]
    if "host" not in names:  # signing the Host header stops replay against another endpoint
        raise errors.SignatureDoesNotMatch("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    if algorithm != ALGORITHM:
        raise errors.IncompleteSignature(
            f"Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now). "
        )
    parts = credential.rstrip("/").split("/")  # AWS ignores trailing slashes here
    if len(parts) != 5:
        raise errors.IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{credential}'"
        )
    key_id, date, region, service, terminator = parts
    day = stamp.strftime("%Y%m%d")
    problems = []  # AWS reports every scope problem at once, each sentence followed by a space
    if not region or (regions is not None and region not in regions):
        problems.append(invalid_region(region))
    if service not in SERVICES:
        problems.append("Credential should be scoped to correct service: 'ses'. ")
    if terminator != TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'. "
        )
    if date != day:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{date}' != '{day}', from '{stamp:{_ISO_BASIC}}'."
        )
    if problems:
        raise errors.SignatureDoesNotMatch("".join(problems))
    return SignedRequest(key_id, date, region, service, names, signature, stamp, presigned, expires)


def invalid_region(region: str) -> str:
    """AWS's words for a credential scoped to a region that the endpoint does not serve."""
    return f"Credential should be scoped to a valid region, not '{region}'. "


def _parse_basic_date(value: str) -> datetime.datetime:
    try:
        if _BASIC_DATE.fullmatch(value):  # strptime alone would take "2013524T0000Z" too
            # Fields by position: strptime took some 20 µs of every request.
            v = value  # yyyymmddThhmmssZ
            return datetime.datetime(
                int(v[:4]),
                int(v[4:6]),
                int(v[6:8]),
                int(v[9:11]),
                int(v[11:13]),
                int(v[13:15]),
                tzinfo=datetime.UTC,
            )
    except ValueError:  # e.g. month 13
        pass
    raise errors.IncompleteSignature(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _parse_http_date(value: str) -> datetime.datetime:
    try:
        stamp = parsedate_to_datetime(value)  # RFC 7231 §7.1.1.1 IMF-fixdate, as botocore sends it
    except (TypeError, ValueError):
        return _parse_basic_date(value)  # some clients put the ISO form in Date; else AWS's wording
    return stamp.replace(tzinfo=datetime.UTC) if stamp.tzinfo is None else stamp.astimezone(datetime.UTC)


def _first_values(query_string: str) -> dict[str, str]:
    """Decoded query parameters, the first occurrence of each name winning."""
    values: dict[str, str] = {}
    for piece in query_string.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            values.setdefault(unquote_plus(name), unquote_plus(value))
    return values
