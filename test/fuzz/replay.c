/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A tiny libFuzzer-compatible driver for `make check`: feeds every file of
 * the given corpus folders (or files) to LLVMFuzzerTestOneInput once, with
 * the normal compiler and no fuzzing engine, so the corpora and the crash
 * regressions in them replay in seconds on every build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		if (f)
			fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

static int
replay_path(const char *path, unsigned *count)
{
	struct dirent **ents;
	struct stat st;
	char p[4096];
	int n, bad = 0;

	if (stat(path, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/%s", path, ents[i]->d_name);
		if (ents[i]->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			(*count)++;
			bad |= replay_file(p);
		}
		free(ents[i]);
	}
	free(ents);
	return bad;
}

int
main(int argc, char **argv)
{
	unsigned count = 0;
	int bad = 0;

	for (int i = 1; i < argc; i++)
		bad |= replay_path(argv[i], &count);
	printf("replay %s: %u inputs%s\n", argc > 0 ? argv[0] : "?", count, bad ? ", errors" : "");
	return bad ? 1 : 0;
}
