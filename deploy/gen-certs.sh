#!/usr/bin/env bash
# Creates the TLS material deploy/compose.yaml mounts, in deploy/certs/:
#
#   ca.crt  ca.key   a private CA (10 years) that signs the two below; ca.key never goes into a container
#   cp.crt  cp.key   the control planes' server certificate (2 years): DNS:cp1, DNS:cp2,
#                    DNS:localhost, IP:127.0.0.1, extendedKeyUsage serverAuth
#   dp.crt  dp.key   the client certificate of the data planes and of the admin CLI (2 years),
#                    extendedKeyUsage clientAuth
#
# Keys are EC P-256 in PKCS#8 PEM ("BEGIN PRIVATE KEY"), mode 0600; certificates 0644.
# Refuses to overwrite any existing file unless given --force (which replaces all six).
#
# Usage: deploy/gen-certs.sh [--force]
set -euo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "gen-certs.sh: unknown argument: $arg (only --force)" >&2
            exit 2
            ;;
    esac
done

if ! command -v openssl >/dev/null 2>&1; then
    echo "gen-certs.sh: openssl is not installed" >&2
    exit 1
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/certs"
files=(ca.crt ca.key cp.crt cp.key dp.crt dp.key)

if [[ $force -eq 0 ]]; then
    existing=()
    for f in "${files[@]}"; do
        if [[ -e "$out/$f" ]]; then
            existing+=("$out/$f")
        fi
    done
    if [[ ${#existing[@]} -gt 0 ]]; then
        echo "gen-certs.sh: refusing to overwrite existing files (use --force to replace them all):" >&2
        printf '  %s\n' "${existing[@]}" >&2
        exit 1
    fi
fi

# Everything is made in a private temporary directory and moved into place only once all six
# exist, so a failure never leaves a half-made set behind.
umask 077
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

days_ca=3650
days_leaf=730

new_key() {
    openssl genpkey -algorithm EC \
        -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve \
        -out "$1"
}

serial() {
    echo "0x$(openssl rand -hex 16)"
}

# --- CA ---------------------------------------------------------------------------------------
cat >"$work/ca.cnf" <<'EOF'
[req]
prompt = no
distinguished_name = dn
x509_extensions = ext

[dn]
CN = TokenRouter deploy CA

[ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
new_key "$work/ca.key"
openssl req -new -x509 -config "$work/ca.cnf" -key "$work/ca.key" \
    -sha256 -days "$days_ca" -set_serial "$(serial)" -out "$work/ca.crt"

# --- leaf certificates signed by the CA ---------------------------------------------------------
# leaf NAME COMMON_NAME EXTENDED_KEY_USAGE [SUBJECT_ALT_NAME]
leaf() {
    local name="$1" cn="$2" eku="$3" san="${4:-}"
    cat >"$work/$name.cnf" <<EOF
[req]
prompt = no
distinguished_name = dn

[dn]
CN = $cn
EOF
    {
        echo "[ext]"
        echo "basicConstraints = critical, CA:FALSE"
        echo "keyUsage = critical, digitalSignature"
        echo "extendedKeyUsage = $eku"
        echo "subjectKeyIdentifier = hash"
        echo "authorityKeyIdentifier = keyid"
        if [[ -n "$san" ]]; then
            echo "subjectAltName = $san"
        fi
    } >"$work/$name.ext"
    new_key "$work/$name.key"
    openssl req -new -config "$work/$name.cnf" -key "$work/$name.key" -out "$work/$name.csr"
    openssl x509 -req -in "$work/$name.csr" \
        -CA "$work/ca.crt" -CAkey "$work/ca.key" -set_serial "$(serial)" \
        -sha256 -days "$days_leaf" \
        -extfile "$work/$name.ext" -extensions ext \
        -out "$work/$name.crt"
}

leaf cp "tokenrouter-control-plane" serverAuth \
    "DNS:cp1, DNS:cp2, DNS:localhost, IP:127.0.0.1"
leaf dp "tokenrouter-data-plane" clientAuth

openssl verify -CAfile "$work/ca.crt" -purpose sslserver "$work/cp.crt" >/dev/null
openssl verify -CAfile "$work/ca.crt" -purpose sslclient "$work/dp.crt" >/dev/null

# --- into place -----------------------------------------------------------------------------------
mkdir -p "$out"
chmod 0700 "$out"
for f in "${files[@]}"; do
    case "$f" in
        *.key) chmod 0600 "$work/$f" ;;
        *.crt) chmod 0644 "$work/$f" ;;
    esac
    mv -f "$work/$f" "$out/$f"
done

echo "Wrote ${files[*]} to $out"
echo "The containers run as uid 10001 and the keys are 0600 and yours: see deploy/README.md"
echo "(\"Certificates\") for letting the containers read cp.key and dp.key."
