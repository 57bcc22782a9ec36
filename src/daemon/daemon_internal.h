/* SPDX-License-Identifier: BSD-2-Clause */
/* The daemon's life-cycle steps, shared by main.c, mefd.c and reload.c only. */
#ifndef MEF_DAEMON_INTERNAL_H
#define MEF_DAEMON_INTERNAL_H

#include <stdbool.h>

#include "mef/mefd.h"

int mefd_open_store(struct mefd *d, bool readonly);
int mefd_start(struct mefd *d);
int mefd_run(struct mefd *d);
void mefd_reload(struct mefd *d);
void mefd_teardown(struct mefd *d);
void mefd_retired_free(struct mefd *d);
/* Loads and checks the [tls] and [ca] PEM files as the listeners will (--check-config). */
int mefd_check_pki(const struct mef_conf *c);

#endif
