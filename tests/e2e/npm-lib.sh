# tests/e2e/npm-lib.sh: npm packages for the suites that need some
# (sourced after tests/lib.sh, which gives T and bail).

# npm_locked SRC NAME [DIR]: npm ci of SRC's package.json and
# package-lock.json into DIR (default: NAME in a cache directory outside
# the tree, so make distcheck leaves nothing behind), reused while the
# lockfile is the same.  Sets NPM_DIR.  Bails out when it cannot.
npm_locked() {
	local src=$1 name=$2 sum pkgs ints
	NPM_DIR=${3:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/fcgiq/$name}
	sum=$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)
	[ "$(cat "$NPM_DIR/.lock-sum" 2>/dev/null)" = "$sum" ] && return 0
	rm -rf "$NPM_DIR"
	mkdir -p "$NPM_DIR"
	cp "$src/package.json" "$src/package-lock.json" "$NPM_DIR/"
	if ! _npm_ci; then
		# A machine without that CA (a bare chroot behind the same
		# proxy) cannot verify the registry's certificate.  The lockfile
		# pins every package's sha512 (npm ci refuses a tarball that
		# does not match), so what is installed is what was reviewed:
		# fetch once more without TLS verification, and say so.
		pkgs=$(grep -c '"node_modules/' "$src/package-lock.json")
		ints=$(grep -c '"integrity": "sha512-' "$src/package-lock.json")
		grep -q 'CERT\|certificate' "$T/npm.log" && [ "$pkgs" -eq "$ints" ] ||
		    bail "npm ci of $src failed: $(grep 'npm ERR!' "$T/npm.log" | head -3)"
		echo "# the npm registry's certificate is not trusted here; fetching" \
		    "with TLS verification off, each of the $ints packages checked" \
		    "against the lockfile's sha512"
		rm -rf "$NPM_DIR/node_modules"
		_npm_ci --strict-ssl=false ||
		    bail "npm ci of $src failed: $(grep 'npm ERR!' "$T/npm.log" | head -3)"
	fi
	echo "$sum" >"$NPM_DIR/.lock-sum"
}

# Node trusts its own CA list unless told to use the system's, where a
# machine keeps the CA of a TLS-inspecting egress proxy.
_npm_ci() {
	(cd "$NPM_DIR" && NODE_OPTIONS=--use-openssl-ca \
	    npm ci --no-audit --no-fund --ignore-scripts "$@") \
	    >>"$T/npm.log" 2>&1
}
