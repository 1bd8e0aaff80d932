/*
 * fuzz_kstat.c - libFuzzer target: /proc/net/netstat as kstat reads it
 * (kstat_counters_read_file), from a memory file. The kernel writes that
 * file, but the reader must survive any kernel's layout, and a test or
 * "mxguardctl tcpstat" may point it at another file.
 *
 * The first byte says how many times (1 to 8) the rest is written one
 * after the other, so that lines over the reader's 16 KiB line bound are
 * reached within -max_len. On success every counter the file lacks must
 * read 0; on failure the message must be terminated and name the file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "kstat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct kstat_counters kc;
	char err[256];
	size_t times, n;
	char *buf;

	if (fd < 0)
		fd = fuzz_memfile("netstat", path, sizeof(path));
	if (size < 1)
		return 0;
	times = (size_t)(data[0] & 7) + 1;
	n = size - 1;
	if ((buf = malloc(n * times + 1)) == NULL)
		abort();
	for (size_t i = 0; i < times; i++)
		memcpy(buf + i * n, data + 1, n);
	fuzz_put(fd, buf, n * times);
	free(buf);
	memset(err, 0x5a, sizeof(err));
	if (kstat_counters_read_file(path, &kc, err, sizeof(err)) == 0) {
		for (int i = 0; i < KSTAT_NCOUNTERS; i++)
			if (kc.have[i] > 1 || (!kc.have[i] && kc.value[i] != 0))
				__builtin_trap();
	} else {
		int line;

		if (fuzz_err_after(err, sizeof(err), path, &line) == NULL)
			__builtin_trap();
	}
	return 0;
}
