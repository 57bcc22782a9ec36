/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Prints the config key table (conf_doc) for `make man`: the key list of
 * mefd.conf(5) comes from the same table the reader uses, so it cannot drift.
 */
#include <stdio.h>

#include "mef/conf.h"

int
main(void)
{
	conf_doc(stdout);
	return 0;
}
