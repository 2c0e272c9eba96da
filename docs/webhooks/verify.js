// Verify a switchyard webhook: node verify.js SECRET SIGNATURE_HEADER BODY_FILE
const crypto = require("crypto");
const fs = require("fs");

const TOLERANCE_SECONDS = 300; // refuse signatures older (or newer) than 5 minutes: replays

// header: X-Switchyard-Signature; rawBody: a Buffer of the body exactly as received
// (in Express: express.raw({ type: "application/json" }), not express.json()).
function verify(header, secret, rawBody, now = Date.now() / 1000) {
  const parts = header.split(",").map((p) => p.trim().split("="));
  const t = Number((parts.find(([k]) => k === "t") || [])[1]);
  const signatures = parts.filter(([k]) => k === "v1").map(([, v]) => v); // two during a rotation
  if (!Number.isInteger(t) || Math.abs(now - t) > TOLERANCE_SECONDS) return false;
  const expected = crypto
    .createHmac("sha256", secret)
    .update(Buffer.concat([Buffer.from(`${t}.`), rawBody]))
    .digest();
  return signatures.some((s) => {
    const given = Buffer.from(s, "hex");
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
}

if (require.main === module) {
  const [secret, header, bodyFile] = process.argv.slice(2);
  process.exit(verify(header, secret, fs.readFileSync(bodyFile)) ? 0 : 1);
}
module.exports = { verify };
