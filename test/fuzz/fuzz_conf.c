/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The configuration file: conf_load on a private temp file holding the
 * input, with real key files beside it (the KEK, TLS and CA keys must exist
 * and be mode 0600) so that valid configs get all the way through; then
 * conf_dump of what loaded, and conf_free. Errors go to /dev/null.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mef/conf.h"
#include "mef/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64] = "/tmp/mefd-fuzzconf-XXXXXX";
static char cpath[128];
static FILE *devnull;

static void
write_file(const char *name, const char *text)
{
	char p[160];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
}

static void
cleanup(void)
{
	static const char *const names[] = {"kek", "key.pem", "mefd.conf", NULL};
	char p[160];

	for (size_t i = 0; names[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
	if (devnull)
		fclose(devnull);
}

static void
setup(void)
{
	log_set_level(LOG_LVL_ERR);
	if (!mkdtemp(dir) || !(devnull = fopen("/dev/null", "w")))
		abort();
	write_file("kek", "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n");
	write_file("key.pem", "not a key, conf only checks the mode\n");
	snprintf(cpath, sizeof(cpath), "%s/mefd.conf", dir);
	atexit(cleanup);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mef_conf *c = NULL;
	int fd;

	if (!devnull)
		setup();
	fd = open(cpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (conf_load(cpath, &c, devnull) == 0) {
		conf_dump(c, devnull);
		conf_free(c);
	}
	return 0;
}
