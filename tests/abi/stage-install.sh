# Sourced by the checks that build consumers against a staged install
# (consumer-pkgconfig.sh, consumer-cmake.sh), which set $me and $tmp and
# source run-logged.sh first.
# stage_install BUILDDIR: `meson install --destdir $tmp/stage` of BUILDDIR
# (already built); sets $stage. Everything is written under $tmp: meson
# install writes its log to BUILDDIR/meson-logs, found through
# meson-private/.., so a shadow build directory of symbolic links, with its
# own meson-private and meson-logs, keeps that write in $tmp too.
stage_install() {
	_builddir=$(cd "$1" && pwd)
	_shadow=$tmp/build
	mkdir -p "$_shadow/meson-logs" "$_shadow/meson-private"
	for _e in "$_builddir"/*; do
		case ${_e##*/} in
		meson-logs|meson-private) ;;
		*)
			if [ -d "$_e" ] && [ ! -h "$_e" ]; then
				ln -s "$_e" "$_shadow/"
			else
				# Files are copied: meson warns when it
				# installs a symbolic link to a file.
				cp -P "$_e" "$_shadow/"
			fi ;;
		esac
	done
	cp -R "$_builddir/meson-private/." "$_shadow/meson-private/"
	stage=$tmp/stage
	run "$tmp/install.log" "${MESON:-meson}" install -C "$_shadow" \
	    --no-rebuild --destdir "$stage"
}
