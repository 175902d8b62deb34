/* VM templates: a directory per template holding template.conf and, for
 * templates that build something (a Linux guest), a builder script. Adding a
 * template is adding files. See termvisor(1), TEMPLATES. */
#ifndef TV_TEMPLATE_H
#define TV_TEMPLATE_H

#include <stdbool.h>
#include <stdint.h>

#include "src/core/paths.h"
#include "common/err.h"

struct template {
	char *name;
	char *dir;
	char *description;
	unsigned cpus;
	uint64_t memory;
	uint64_t disk_size; /* 0: no empty disk is made (a builder may make one) */
	char *kernel;       /* a shipped data file ("demo/demo.elf") when no builder */
	char *cmdline;
	char *builder;      /* script in dir, or NULL */
};

/* Every template found, sorted by name; a user's own templates in
 * DATA/templates/ come first and hide shipped ones of the same name. */
int template_list(const struct tv_paths *p, struct template **out, size_t *n,
		  struct tv_err *err);
int template_load(const struct tv_paths *p, const char *name, struct template *t,
		  struct tv_err *err);
void template_free(struct template *t);
void template_list_free(struct template *v, size_t n);

/* Runs the template's builder in the VM's (new, empty) data directory. It leaves
 * `kernel`, and maybe `initrd` and `disk.qcow2` (of disk_size bytes; 0: the
 * builder's choice) there. Progress goes to stderr. Ctrl-C and the signals that
 * end termvisor end the builder, which then fails. */
int template_build(const struct template *t, const char *vm_name, const char *datadir,
		   const char *cache_dir, uint64_t disk_size, struct tv_err *err);

#endif
