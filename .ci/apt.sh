# Sourced by the .ci scripts. apt_install PACKAGE...: install from Debian's mirror,
# one apt at a time: `make demo` installs the engine and the test cloud's back ends
# at once, and apt refuses to start while another apt holds its locks.
apt_install() {
    flock /var/lock/tcup-apt.lock sh -ec 'apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
        apt-get clean' apt_install "$@"
}
