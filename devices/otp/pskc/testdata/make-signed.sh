#!/bin/sh
# Makes the signed PSKC fixtures with tools independent of egate: openssl
# (the vendor's signing key and certificate, and another vendor's) and
# xmlsec1 (Debian package xmlsec1: an enveloped XML-DSig, RSA-SHA256,
# exclusive c14n). Run from devices/otp/pskc/testdata; the keys are thrown
# away, the certificates kept.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for who in vendor other; do
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 36500 \
		-subj "/O=Example Token Vendor/CN=$who PSKC signing" \
		-keyout "$tmp/$who.key" -out "signed-$who-cert.pem" 2>/dev/null
done
xmlsec1 --sign --privkey-pem "$tmp/vendor.key,signed-vendor-cert.pem" \
	--output signed.pskcxml signed-template.pskcxml
