#!/usr/bin/env bash
# Templates: listed, used by create, and a failing template leaves nothing behind.
. "$(dirname "$0")/../lib.sh"
t_home

out=$("$TV" templates)
for t in demo debian-minimal debian; do
	t_check "template $t is listed" grep -q "^$t " <<<"$out"
done

# A user's own template (data is user-writable) with a builder that fails half-way.
tpl=$TERMVISOR_HOME/data/templates/half
mkdir -p "$tpl"
printf 'description = "fails half-way";\ncpus = 3;\nbuilder = "build.sh";\n' >"$tpl/template.conf"
printf 'echo partial >kernel\necho "cannot fetch package xyz" >&2\nexit 1\n' >"$tpl/build.sh"
t_check "user templates are listed" grep -q "^half .*fails half-way" <<<"$("$TV" templates)"
msg=$("$TV" create vm1 --template half 2>&1)
rc=$?
t_check "create fails when the builder fails" [ $rc -ne 0 ]
t_check "the builder's message reaches the user" grep -q "cannot fetch package xyz" <<<"$msg"
t_check "the error names the template" grep -q "template 'half'" <<<"$msg"
t_check "no definition is left" [ ! -e "$TERMVISOR_HOME/vms/vm1.conf" ]
t_check "no data directory is left" [ ! -e "$TERMVISOR_HOME/data/vm1" ]

# A builder that succeeds: its kernel and initrd end up in the definition,
# with the template's values unless the command line overrides them.
tpl=$TERMVISOR_HOME/data/templates/tiny
mkdir -p "$tpl"
printf 'cpus = 3;\nmemory = "96M";\ncmdline = "console=ttyS0";\nbuilder = "build.sh";\n' \
	>"$tpl/template.conf"
printf 'echo k >kernel\necho i >initrd\n' >"$tpl/build.sh"
t_check "create from a building template" "$TV" create vm2 --template tiny --memory 128M
conf=$TERMVISOR_HOME/vms/vm2.conf
t_check "kernel recorded" grep -q '^kernel = "kernel";' "$conf"
t_check "initrd recorded" grep -q '^initrd = "initrd";' "$conf"
t_check "template's cpus kept" grep -q '^cpus = 3;' "$conf"
t_check "command line's memory wins" grep -q '^memory = "128M";' "$conf"
t_check "template's cmdline kept" grep -q '^cmdline = "console=ttyS0";' "$conf"
t_check "the kernel file is there" [ -f "$TERMVISOR_HOME/data/vm2/kernel" ]

msg=$("$TV" create vm3 --template nosuch 2>&1)
t_check "an unknown template is named in the error" grep -q "no template named 'nosuch'" <<<"$msg"
t_check "and nothing is left" [ ! -e "$TERMVISOR_HOME/data/vm3" ]
t_check "a template name cannot climb directories" bash -c "! '$TV' create vm4 --template ../x 2>/dev/null"
t_done
