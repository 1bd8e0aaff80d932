/*
 * fuzz_lmdb.c - libFuzzer target: a value read back from the LMDB file
 * (a file on disk: an old version, another program, a corrupt page),
 * through store_lmdb_rec_decode. A value that decodes must be exactly
 * the encoding of what it decoded to; one that does not must leave the
 * record untouched. The input is copied to a heap block of its exact size
 * so that a read past it is caught.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_rec rec, mark;
	unsigned char *v = malloc(size ? size : 1), enc[STORE_LMDB_VALSZ];

	if (v == NULL)
		abort();
	memcpy(v, data, size);
	memset(&rec, 0xa5, sizeof(rec));
	memcpy(&mark, &rec, sizeof(rec));
	if (store_lmdb_rec_decode(v, size, &rec) == 0) {
		store_lmdb_rec_encode(&rec, enc);
		if (size != sizeof(enc) || memcmp(enc, v, size) != 0)
			__builtin_trap();
		store_kind_rec_valid(&rec);
	} else if (memcmp(&rec, &mark, sizeof(rec)) != 0) {
		__builtin_trap();
	}
	free(v);
	return 0;
}
