#!/usr/bin/env bash
# Installs the Debian packages egate's build, demo and tests need, when they are
# missing. Idempotent; needs root (or sudo) on Debian/Ubuntu. Other systems:
# see README.md ("Other systems").
set -euo pipefail

PKGS=(
  build-essential pkg-config        # cgo: PKCS#11 and PC/SC
  softhsm2 opensc                   # the HSM and U-shield in dev/tests; pkcs11-tool
  pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools  # PC/SC with the virtual reader (PIV)
  yubico-piv-tool                   # PIV interop reference
  oathtool                          # OATH reference
  openssl libengine-pkcs11-openssl  # certificate and signature reference; OpenSSL through PKCS#11 (PIV interop)
  postgresql                        # the multi-replica engine, for tests
  chromium                          # browser tests (chromedp)
  fonts-dejavu-core                 # text in rendered images
  fonts-wqy-microhei                # Chinese text in Chromium (the pages in zh-CN, screenshots)
  fonts-droid-fallback              # the Chinese PDF statement's font (platforms.ebank.statement-font; a plain TrueType font fpdf embeds)
  poppler-utils                     # pdftotext, pdftoppm: the statement PDFs read and rendered by an independent tool in tests
  procps                            # pgrep/pkill in the test harness
  python3 curl                      # free ports (scripts/pg.sh, scripts/load.sh); make load's readiness probe
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "deps.sh: missing packages ${missing[*]} and no apt-get here; install them by hand (README.md, Other systems)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
