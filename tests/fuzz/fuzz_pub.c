/*
 * libFuzzer harness for the publication reader (trust/pubread.c): the
 * PUBLICATION index and the manifest, through pub_parse_mem (pubread.c
 * says why not pub_load on a directory). Input: two big-endian 16-bit
 * lengths, the index, the manifest, then the bytes every other listed
 * file reads as (a certificate DER in the seeds, for the manifest's cert
 * lines). Aborts when the reader breaks its contract: a failure without a
 * message or with a half-filled publication, served files not sorted or
 * not found by pub_find, no ITL in a publication it accepted, a
 * certificate without bytes or with too many roles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_need.h"
#include "fuzz_script.h"
#include "publication.h"

static void
check_accepted(const struct publication *p)
{
	for (size_t i = 0; i < p->nfiles; i++) {
		need(i == 0 || strcmp(p->files[i - 1].name, p->files[i].name) < 0,
			"served files sorted, each once");
		need(pub_find(p, p->files[i].name) == &p->files[i], "pub_find finds each file");
	}
	need(pub_find(p, "ITLFile.tlv") != NULL, "an accepted publication serves the ITL");
	for (size_t i = 0; i < p->ncerts; i++) {
		need(p->certs[i].der != NULL && p->certs[i].der_len > 0, "a certificate has bytes");
		need(p->certs[i].nroles <= 8, "roles fit");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct fz z = { d, n, 0 };
	uint16_t ilen = fz_u16(&z), mlen = fz_u16(&z);
	size_t il, ml, fl;
	const uint8_t *ip = fz_bytes(&z, ilen, &il), *mp = fz_bytes(&z, mlen, &ml);
	const uint8_t *fp = fz_bytes(&z, n, &fl);
	/* exact-size copies so ASan sees any read past the end */
	char *index = malloc(il ? il : 1);
	uint8_t *manifest = malloc(ml ? ml : 1), *file = malloc(fl ? fl : 1);
	static struct publication p;
	struct trust_err err = { 0 };
	int rc;

	memcpy(index, ip, il);
	memcpy(manifest, mp, ml);
	memcpy(file, fp, fl);
	rc = pub_parse_mem(index, il, manifest, ml, file, fl, &p, &err);
	if (rc == 0) {
		check_accepted(&p);
	} else {
		need(err.msg[0] != '\0', "a refusal says why");
		need(p.files == NULL && p.nfiles == 0 && p.certs == NULL && p.ncerts == 0,
			"a refused publication holds nothing");
	}
	pub_free(&p);
	free(index);
	free(manifest);
	free(file);
	return 0;
}
