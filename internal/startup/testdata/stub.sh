#!/bin/bash
# The recorder that stands in for the system's commands when the tests run a
# startup-script (recorder_test.go): every call is appended to $LOG/calls;
# commands that change the machine only change files under $STATE, and the
# metadata server and the release downloads answer from $FIXTURES.
set -uo pipefail
name=${0##*/}
LOG=$HAKUBE_TEST_LOG STATE=$HAKUBE_TEST_STATE FIXTURES=$HAKUBE_TEST_FIXTURES
printf '%s\n' "$name $*" >>"$LOG/calls"

case $name in
curl)
	out='' method=GET data='' url='' headers=''
	while (($#)); do
		case $1 in
		-o) out=$2; shift 2 ;;
		-X) method=$2; shift 2 ;;
		-H) headers+="$2;"; shift 2 ;;
		--data-binary) data=$2; shift 2 ;;
		--retry | --retry-delay | --max-time | --connect-timeout) shift 2 ;;
		-*) shift ;;
		*) url=$1; shift ;;
		esac
	done
	case $url in
	http://metadata.google.internal/computeMetadata/v1/*)
		if [[ $headers != *"Metadata-Flavor: Google;"* ]]; then
			echo "curl stub: metadata request without Metadata-Flavor: Google" >&2
			exit 22
		fi
		path=${url#http://metadata.google.internal/computeMetadata/v1/}
		if [[ $method == PUT ]]; then
			[[ -e $FIXTURES/guest-attributes-off ]] && exit 22
			printf '%s\t%s\n' "$path" "$data" >>"$LOG/guest-attributes"
			exit 0
		fi
		[[ -f $FIXTURES/metadata/$path ]] || exit 22
		cat "$FIXTURES/metadata/$path"
		;;
	https://*)
		file=$FIXTURES/downloads/${url#https://}
		[[ -f $file ]] || exit 22
		printf '%s\n' "$url" >>"$LOG/downloads"
		if [[ -n $out ]]; then cp "$file" "$out"; else cat "$file"; fi
		;;
	*) exit 6 ;;
	esac
	;;
systemctl)
	if [[ $1 == is-enabled ]]; then
		[[ -e $STATE/enabled/${*: -1} ]]
		exit
	fi
	;;
apt-get)
	installing=''
	for a in "$@"; do
		if [[ $a == install ]]; then installing=1; continue; fi
		if [[ -n $installing && $a != -* ]]; then
			mkdir -p "$STATE/dpkg"
			touch "$STATE/dpkg/$a"
			if [[ $a == containernetworking-plugins ]]; then
				mkdir -p "$HAKUBE_ROOT/usr/lib/cni"
				for p in bridge host-local portmap loopback; do
					printf '#!/bin/sh\n' >"$HAKUBE_ROOT/usr/lib/cni/$p"
					chmod 0755 "$HAKUBE_ROOT/usr/lib/cni/$p"
				done
			fi
		fi
	done
	;;
dpkg-query)
	pkg=${*: -1}
	[[ -e $STATE/dpkg/$pkg ]] || exit 1
	case $* in
	*Status*) printf 'install ok installed' ;;
	*Version*) printf '1.6.20~ds1-1+deb12u3' ;;
	esac
	;;
blkid)
	[[ -f $STATE/fs-type ]] || exit 2
	case $* in
	*TYPE*) cat "$STATE/fs-type" ;;
	*UUID*) cat "$STATE/fs-uuid" ;;
	esac
	;;
mkfs.ext4)
	printf 'ext4\n' >"$STATE/fs-type"
	printf '5f1e2d3c-aaaa-4bbb-8ccc-0123456789ab\n' >"$STATE/fs-uuid"
	;;
mountpoint)
	[[ -e $STATE/mounted ]]
	exit
	;;
mount) touch "$STATE/mounted" ;;
iptables)
	# iptables -w -t nat -C|-A CHAIN RULE...
	op=$4
	shift 4
	rule="$*"
	touch "$STATE/iptables"
	case $op in
	-C)
		grep -Fxq -- "$rule" "$STATE/iptables"
		exit
		;;
	-A) printf '%s\n' "$rule" >>"$STATE/iptables" ;;
	esac
	;;
ip)
	case $* in
	*"route show"*) if [[ -f $STATE/local-route ]]; then cat "$STATE/local-route"; fi ;;
	*"route del"*) rm -f "$STATE/local-route" ;;
	esac
	;;
sha256sum | tar) exec "$HAKUBE_TEST_REAL/$name" "$@" ;;
esac
exit 0
