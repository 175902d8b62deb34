/* The ACPI PM1 fixed hardware of the termvisor machine (vm/layout.h): the PM1a
 * event block (status, enable), the PM1a control block and the PM timer, with
 * the SCI on LAYOUT_ACPI_SCI_IRQ. A guest that writes SLP_TYP=S5 with SLP_EN
 * powers the VM off (VM_EXIT_POWEROFF); the host presses the power button
 * with acpi_pm_power_button. */
#ifndef TV_DEV_ACPI_PM_H
#define TV_DEV_ACPI_PM_H

#include "common/err.h"

struct vm;
struct vm_config;

/* dev_machine[] entry: registers the device "acpi-pm". */
int acpi_pm_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);

/* Presses the power button: sets PM1 PWRBTN_STS and raises the SCI when the
 * guest enabled PWRBTN_EN. The guest's ACPI code decides what to do (Linux
 * runs its power-off path). Any thread. -1 with err when the VM has no
 * acpi-pm device. */
int acpi_pm_power_button(struct vm *vm, struct tv_err *err);

#endif
