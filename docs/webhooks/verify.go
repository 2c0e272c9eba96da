// Verify a switchyard webhook: go run verify.go SECRET SIGNATURE_HEADER BODY_FILE
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

const toleranceSeconds = 300 // refuse signatures older (or newer) than 5 minutes: replays

// verify checks header (X-Switchyard-Signature) against rawBody, the body exactly as received.
func verify(header, secret string, rawBody []byte, now time.Time) bool {
	var t int64 = -1
	var signatures []string // two during a secret rotation
	for _, part := range strings.Split(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch key {
		case "t":
			if n, err := strconv.ParseInt(value, 10, 64); err == nil {
				t = n
			}
		case "v1":
			signatures = append(signatures, value)
		}
	}
	if t < 0 || now.Unix()-t > toleranceSeconds || t-now.Unix() > toleranceSeconds {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(fmt.Sprintf("%d.", t)))
	mac.Write(rawBody)
	expected := mac.Sum(nil)
	for _, s := range signatures {
		if given, err := hex.DecodeString(s); err == nil && hmac.Equal(given, expected) {
			return true
		}
	}
	return false
}

func main() {
	body, err := os.ReadFile(os.Args[3])
	if err != nil || !verify(os.Args[2], os.Args[1], body, time.Now()) {
		os.Exit(1)
	}
}
