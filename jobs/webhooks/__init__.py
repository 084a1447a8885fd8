"""Webhooks: the parts of a delivery that do not depend on the job tables.

- `signing`: the Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
  `webhook-signature`), secrets in their `whsec_` form;
- `targets`: which receiver URLs are allowed and the one address a delivery connects to
  (SSRF: loopback, private, link-local, metadata and other non-public addresses refused
  unless the operator allows them);
- `delivery`: one POST to a checked address with a timeout, no redirects and a capped
  answer, and the retry schedule.

Standard library only: the API process and the dispatcher import these.
"""
