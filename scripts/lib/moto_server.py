"""moto's S3 server with request signatures checked against the request as sent.

moto rebuilds the URL it verifies from its parsed (decoded) form, so a correctly signed request
whose query holds %2F, '+', '=' or a space fails its check (getmoto/moto#5948). This wrapper
hands moto the raw request target (RAW_URI) instead; the signature check itself is moto's own,
done with botocore.
"""
import sys

from moto.core.authorization import ActionAuthenticatorMixin

_check = ActionAuthenticatorMixin._authenticate_and_authorize_action


def _check_raw_target(self, iam_request_cls, resource="*"):
    environ = getattr(getattr(self, "request", None), "environ", None) or {}
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        return _check(self, iam_request_cls, resource)
    parsed = self.uri
    self.uri = raw
    try:
        return _check(self, iam_request_cls, resource)
    finally:
        self.uri = parsed


ActionAuthenticatorMixin._authenticate_and_authorize_action = _check_raw_target

from moto.server import main  # noqa: E402

main(sys.argv[1:])
