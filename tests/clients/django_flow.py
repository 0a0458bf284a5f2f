"""django-ses's ordinary flow, as a Django project uses it: ``python django_flow.py ENDPOINT v1|v2 KEY FROM``.

Run as a subprocess by tests/integration/test_clients.py (Django's settings are process-wide). Settings are
django-ses's defaults (auto-throttle on) but for the endpoint and the credentials; prints a JSON object of
what Django's mail API returned.
"""

from __future__ import annotations

import json
import sys

import django
from django.conf import settings

endpoint, api, key, sender = sys.argv[1:5]
settings.configure(
    EMAIL_BACKEND="django_ses.SESBackend",
    AWS_SES_REGION_NAME="us-east-1",
    AWS_SES_REGION_ENDPOINT_URL=endpoint,
    AWS_ACCESS_KEY_ID=key,
    AWS_SECRET_ACCESS_KEY="secret",
    USE_SES_V2=api == "v2",
)
django.setup()

from django.core.mail import EmailMessage, get_connection, send_mail  # noqa: E402

sent = send_mail("django subject", "hello from django", f"Django App <{sender}>", ["to@example.com"])
message = EmailMessage(
    "django attachment",
    "see attached",
    sender,
    ["to@example.com"],
    cc=["cc@example.com"],
    bcc=["bcc@example.com"],
)
message.attach("data.csv", "a,b\n1,2\n", "text/csv")
sent += message.send()
connection = get_connection()
print(json.dumps({"sent": sent, "backend": type(connection).__name__}))
