#!/usr/bin/env bash
# `termvisor list`: ten definitions, two broken in different ways: the eight good
# ones are listed and both errors are reported with file and line.
. "$(dirname "$0")/../lib.sh"
t_home
mkdir -p "$TERMVISOR_HOME/vms"
for i in 1 2 3 4 5 6 7 8; do
	cat >"$TERMVISOR_HOME/vms/vm$i.conf" <<CONF
cpus = $(( (i % 4) + 1 ));
memory = "${i}00M";
description = "lab machine $i";
CONF
done
printf 'cpus = 2;\nmemory = "lots";\n' >"$TERMVISOR_HOME/vms/broken-mem.conf"
printf 'cpus = 2;\n\ndisks = ( { file = "x.qcow2" \n' >"$TERMVISOR_HOME/vms/broken-syntax.conf"

out=$("$TV" list 2>"$TERMVISOR_HOME/err")
rc=$?
err=$(cat "$TERMVISOR_HOME/err")
t_check "exit status says something was wrong" [ $rc -eq 1 ]
t_check "eight good VMs listed as stopped" [ "$(grep -c ' stopped ' <<<"$out")" -eq 8 ]
for i in 1 2 3 4 5 6 7 8; do
	grep -q "^vm$i .* stopped .* $(( (i % 4) + 1 )) *${i}00M " <<<"$out" ||
		t_fail "vm$i shown with its vCPUs and memory"
done
t_check "memory error names file, line and field" \
	grep -q "broken-mem.conf:2: memory: expected a size like 512M or 2G" <<<"$err"
t_check "syntax error names file and line" grep -q "broken-syntax.conf:[34]: " <<<"$err"
t_check "both broken VMs are in the list as broken" \
	[ "$(grep -c '^broken-.* broken ' <<<"$out")" -eq 2 ]

json=$("$TV" list --json 2>/dev/null)
t_check "--json is valid JSON with ten VMs" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["version"] == 1
vms = d["vms"]
assert len(vms) == 10, len(vms)
broken = [v for v in vms if v["state"] == "broken"]
assert len(broken) == 2 and all(":" in v["error"] for v in broken)
good = {v["name"]: v for v in vms if v["state"] != "broken"}
assert good["vm3"]["cpus"] == 4 and good["vm3"]["memory"] == 300 << 20
assert good["vm3"]["description"] == "lab machine 3"
' "$json"

rm "$TERMVISOR_HOME"/vms/broken-*
t_check "exit 0 when every definition is good" "$TV" list >/dev/null 2>&1
t_done
