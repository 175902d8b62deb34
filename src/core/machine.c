#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "src/core/machine.h"

void machine_init(struct machine *m)
{
	memset(m, 0, sizeof(*m));
	m->cfg.cpus = 1;
	m->cfg.memory = 512ULL << 20;
	m->cfg.disks = m->disks;
	m->cfg.nics = m->nics;
}

char *machine_own(struct machine *m, char *s)
{
	if (s == NULL)
		return NULL;
	if (m->nowned == ARRAY_SIZE(m->owned))
		abort(); /* a fixed number of strings per machine: a bug if more */
	m->owned[m->nowned++] = s;
	return s;
}

int machine_from_def(struct machine *m, const struct tv_paths *p, const struct vmdef *def,
		     struct tv_err *err)
{
	machine_init(m);
	if (def->ndisks > VMDEF_MAX_DISKS)
		return tv_errf(err, "VM %s has %zu disks; at most %d", def->name, def->ndisks,
			       VMDEF_MAX_DISKS);
	m->cfg.cpus = def->cpus;
	m->cfg.memory = def->memory;
	m->cfg.kernel = def->kernel ? machine_own(m, vmdef_path(def, def->kernel)) : NULL;
	m->cfg.initrd = def->initrd ? machine_own(m, vmdef_path(def, def->initrd)) : NULL;
	m->cfg.cmdline = def->cmdline ? machine_own(m, xstrdup(def->cmdline)) : NULL;
	for (size_t i = 0; i < def->ndisks; i++) {
		m->disks[i].path = machine_own(m, vmdef_path(def, def->disks[i].file));
		m->disks[i].format = disk_format_name(def->disks[i].format);
		m->disks[i].readonly = def->disks[i].readonly;
		m->disks[i].aio = def->disks[i].aio;
		m->disks[i].on_error = def->disks[i].on_error;
		m->disks[i].serial =
		    def->disks[i].serial ? machine_own(m, xstrdup(def->disks[i].serial)) : NULL;
	}
	m->cfg.ndisks = def->ndisks;
	if (def->nnets > NET_NICS_MAX)
		return tv_errf(err, "VM %s has %zu network interfaces; at most %d", def->name,
			       def->nnets, NET_NICS_MAX);
	for (size_t i = 0; i < def->nnets; i++)
		if (vmdef_nic(def, i, &m->nics[i], err) < 0)
			return tv_err_prefix(err, "VM %s: ", def->name);
	m->cfg.nnics = def->nnets;
	m->cfg.debug_exit = def->debug_exit;
	m->no_sandbox = def->sandbox_off;
	if (p != NULL)
		m->cfg.kernel_cache = machine_own(m, xstrdup(p->cache_dir));
	return 0;
}

void machine_free(struct machine *m)
{
	for (size_t i = 0; i < m->nowned; i++)
		free(m->owned[i]);
	m->nowned = 0;
}
