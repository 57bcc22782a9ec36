/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl handlers of the Mmef verbs (ctl_mmef.c): reg, keyreg and cmd.
 * Declared apart from ctl.h so the Mmef module adds no lines to it.
 */
#ifndef MEF_CTL_MMEF_H
#define MEF_CTL_MMEF_H

#include "ctl.h"

int ctl_reg_list(struct ctl *c, const struct ctl_args *a);
int ctl_reg_show(struct ctl *c, const struct ctl_args *a);
int ctl_keyreg_list(struct ctl *c, const struct ctl_args *a);
int ctl_keyreg_show(struct ctl *c, const struct ctl_args *a);
int ctl_keyreg_remove(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_queue(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_list(struct ctl *c, const struct ctl_args *a);

#endif
