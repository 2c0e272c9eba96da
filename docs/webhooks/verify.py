# Verify a switchyard webhook: python3 verify.py SECRET SIGNATURE_HEADER BODY_FILE
import hashlib, hmac, sys, time

TOLERANCE_SECONDS = 300  # refuse signatures older (or newer) than 5 minutes: replays

def verify(header: str, secret: str, raw_body: bytes, now: float | None = None) -> bool:
    """header: X-Switchyard-Signature; raw_body: the request body exactly as received."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    timestamps = [v for k, v in parts if k.strip() == "t"]
    signatures = [v for k, v in parts if k.strip() == "v1"]  # two during a secret rotation
    if not timestamps or not timestamps[0].isdigit():
        return False
    t = int(timestamps[0])
    if abs((now or time.time()) - t) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)

if __name__ == "__main__":
    secret, header, body_file = sys.argv[1:4]
    sys.exit(0 if verify(header, secret, open(body_file, "rb").read()) else 1)
