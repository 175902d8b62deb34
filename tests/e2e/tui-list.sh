#!/usr/bin/env bash
# The interface through a real terminal (tmux, 100x30): the VM list and mouse, creating
# a VM with the form, refusing a bad value in place, deleting after the VM's
# name is typed, a definition changed from elsewhere showing at once, and a
# long error wrapped inside its box at 80 columns.
. "$(dirname "$0")/../lib.sh"
t_home
t_tmux_init
trap 'tm kill-server 2>/dev/null; t_cleanup' EXIT
wait_for() { t_wait_for ui "$1" 5; }

mkdir -p "$TERMVISOR_HOME/vms"
printf 'cpus = 2;\nmemory = "1G";\ndescription = "first lab";\n' >"$TERMVISOR_HOME/vms/lab1.conf"
printf 'memory = "lots";\n' >"$TERMVISOR_HOME/vms/broken.conf"
tm new-session -d -s ui -x 100 -y 30 "env TERMVISOR_HOME='$TERMVISOR_HOME' '$TV'; sleep 5"

t_check "the list shows the VM with its vCPUs and memory" wait_for "lab1 .* stopped .* 2 *1G"
t_check "a broken definition is listed as broken" wait_for "broken *broken"
t_check "the selected broken VM shows its error" wait_for "broken.conf:1: memory: expected a size"
tm send-keys -t ui Down
t_check "moving down shows lab1's details" wait_for "first lab"

# The mouse, as a terminal reports it (X10 reports: ESC [ M, then button,
# column and row, each plus 32): the wheel moves the selection, a click
# selects the row under it.
mouse() { t_mouse ui "$@"; }
row_of() { t_screen ui | grep -n "^ $1 " | head -n 1 | cut -d: -f1; }
mouse 64 3 3
t_check "the wheel up moves the selection back to broken" wait_for "broken.conf:1: memory"
r=$(row_of lab1)
mouse 0 3 "$r"
mouse 3 3 "$r"
t_check "a click on lab1's row selects it" wait_for "first lab"

tm send-keys -t ui n
t_check "n opens the form" wait_for "New VM"
# Name, template (none), vCPUs, memory.
tm send-keys -t ui "web1" Tab Tab Tab "lots" Tab
t_check "a bad memory value is refused as it is typed" wait_for "memory: expected a size like 512M"
tm send-keys -t ui Enter Enter Enter
t_check "and when the form is sent" wait_for "memory: expected a size like 512M"
# Back to the memory field; typing replaces the old value; Ctrl-U empties the
# disk field (no disk); Enter on the last field creates.
tm send-keys -t ui Up Up Up "768M" Tab C-u Tab Tab Enter
t_check "the new VM appears in the list" wait_for "web1 .* stopped .* 1 *768M"
t_check "its definition was written" grep -q 'memory = "768M";' "$TERMVISOR_HOME/vms/web1.conf"
# The list shows the definition as soon as it is on disk; the selection
# moves to the new VM when `termvisor create` has ended (slower in the
# sanitizer build, where D came in between and asked about lab1).
t_check "the new VM is selected once created" wait_for "created VM 'web1'"

tm send-keys -t ui D
t_check "delete asks for the VM's name" wait_for "Delete VM 'web1'.*Type its name"
tm send-keys -t ui "web" Enter
sleep 0.3
t_check "a wrong name keeps it" [ -f "$TERMVISOR_HOME/vms/web1.conf" ]
t_check "saying so" wait_for "web1 kept"
tm send-keys -t ui D
wait_for "Delete VM 'web1'" >/dev/null
tm send-keys -t ui "web1" Enter
t_check "typing its name deletes it" wait_for "deleted VM 'web1'"
t_check "its files are gone" [ ! -e "$TERMVISOR_HOME/vms/web1.conf" ] && [ ! -e "$TERMVISOR_HOME/data/web1" ]

# Another terminal: the list follows within a second, with no key pressed.
printf 'cpus = 3;\nmemory = "2G";\n' >"$TERMVISOR_HOME/vms/lab2.conf"
t_check "a definition written elsewhere appears within a second" t_wait_for ui "lab2 .* stopped .* 3 *2G" 1
rm "$TERMVISOR_HOME/vms/lab2.conf"
t_check "and goes when it is removed" bash -c "sleep 1; ! '$TMUX_BIN' -S '$T_TMUX_SOCK' capture-pane -t ui -p | grep -q lab2"

tm send-keys -t ui q
sleep 0.3
t_check "q quits" bash -c "! '$TMUX_BIN' -S '$T_TMUX_SOCK' capture-pane -t ui -p | grep -q 'n create'"

# At 80 columns a start that fails says why inside its box, wrapped: a VM
# with a long name and no kernel.
long=a-vm-whose-name-is-long-enough-that-its-error-needs-two-lines-x
printf 'cpus = 1;\nmemory = "64M";\n' >"$TERMVISOR_HOME/vms/$long.conf"
tm new-session -d -s narrow -x 80 -y 24 "env TERMVISOR_HOME='$TERMVISOR_HOME' '$TV'; sleep 5"
t_wait_for narrow "lab1" 5 >/dev/null
tm send-keys -t narrow s
t_check "a start that fails shows why" t_wait_for narrow "not started" 10
t_check "in a box that wraps the reason" t_wait_for narrow "│ no kernel; set kernel in *│" 1
t_check "the box's lines stay inside 80 columns" \
	bash -c "'$TMUX_BIN' -S '$T_TMUX_SOCK' capture-pane -t narrow -p | LC_ALL=C.UTF-8 wc -L | grep -qx '[0-7][0-9]\\|80'"
t_check "the box is closed on its right side on every line" \
	bash -c "'$TMUX_BIN' -S '$T_TMUX_SOCK' capture-pane -t narrow -p | grep '│' | grep -vc '│.*│' | grep -qx 0"

# Keys and colours from termvisor.conf; NO_COLOR.
tm kill-server 2>/dev/null
colours() { t_screen "$1" -e | grep -cE $'\e\\[([0-9;]*;)?(3[0-8]|4[0-8]|9[0-7]|10[0-7])[;m]'; }
tm new-session -d -s plain -x 100 -y 30 "env NO_COLOR=1 TERMVISOR_HOME='$TERMVISOR_HOME' '$TV'; sleep 5"
t_wait_for plain "broken *broken" 5 >/dev/null
t_check "NO_COLOR=1 draws no colour" [ "$(colours plain)" -eq 0 ]
printf 'keys = { list = { create = "N"; }; };\ntheme = { broken = "magenta"; };\n' \
	>"$TERMVISOR_HOME/termvisor.conf"
tm new-session -d -s conf -x 100 -y 30 "env TERMVISOR_HOME='$TERMVISOR_HOME' '$TV'; sleep 5"
t_wait_for conf "broken *broken" 5 >/dev/null
t_check "colours are drawn otherwise" [ "$(colours conf)" -gt 0 ]
t_check "in the theme's colour (magenta: 35)" bash -c "'$TMUX_BIN' -S '$T_TMUX_SOCK' capture-pane -t conf -p -e | grep -q $'\e\\[35mbroken'"
t_check "the footer shows the rebound key" t_wait_for conf "N create" 5
tm send-keys -t conf n
sleep 0.3
t_check "the old key does nothing" bash -c "! '$TMUX_BIN' -S '$T_TMUX_SOCK' capture-pane -t conf -p | grep -q 'New VM'"
tm send-keys -t conf N
t_check "the new one opens the form" t_wait_for conf "New VM" 5
tm send-keys -t conf Escape '?'
t_check "the help opens" t_wait_for conf "Keys (rebind them" 5
for _ in $(seq 20); do tm send-keys -t conf j; done
t_check "and lists the rebound key" t_wait_for conf "N  *create  *new VM" 5
printf 'keys = { list = { create = "Ctrl-n"; }; };\n' >"$TERMVISOR_HOME/termvisor.conf"
tm new-session -d -s bad -x 100 -y 30 "env TERMVISOR_HOME='$TERMVISOR_HOME' '$TV'; sleep 5"
t_check "a bad key name is refused, naming the file, line and key" \
	t_wait_for bad "termvisor.conf:1: keys.list.create: unknown key name \"Ctrl-n\"" 5
t_done
