/*
 * The socket protocol between tvsctl and tvs-controld (OpenBSD imsg
 * style). Every message is a fixed header, then `len` payload bytes:
 *
 *   struct cd_hdr { uint32_t type; uint32_t len; }   host byte order
 *
 * (a UNIX socket never leaves the host). Each type has one payload shape,
 * and the receiver checks the exact length and shape before it uses a
 * byte (cd_check); anything else closes the connection and is counted.
 *
 *   type        from    payload
 *   CD_CMD      client  u32 flags, u32 nwords, then nwords NUL-terminated
 *                       strings that fill the payload exactly: the store
 *                       path if CD_F_STORE, the publication root if
 *                       CD_F_PUB, then the command's words as typed
 *   CD_ANSWER   client  one NUL-terminated string (the answer to CD_ASK)
 *   CD_MEMORY   both    client: empty; daemon: struct cd_memory
 *   CD_STATS    both    client: empty; daemon: struct cd_stats
 *   CD_OUT      daemon  bytes for the client's stdout (1..CD_TEXT_MAX)
 *   CD_ERR      daemon  bytes for the client's stderr (1..CD_TEXT_MAX)
 *   CD_ASK      daemon  u32 secret (0: y/n question, 1: no echo), then a
 *                       NUL-terminated prompt filling the payload
 *   CD_DONE     daemon  u32 exit code (tvsctl's: 0 done, 1 failed, 2 usage,
 *                       3 locked, 4 published but not served)
 *   CD_NOT_MINE daemon  NUL-terminated: the store the daemon manages (the
 *                       client named another; it works offline on that one)
 *   CD_FD       client  struct cd_fd: which string of the CD_CMD that follows
 *                       the descriptor stands for, and how it was opened; the
 *                       descriptor itself rides on the message as SCM_RIGHTS
 *                       ancillary data, exactly one per CD_FD
 *
 * A CD_CMD conversation ends with CD_DONE and the daemon closes; CD_MEMORY
 * and CD_STATS may repeat on one connection, within the session's time.
 * CD_FD messages come before their CD_CMD: the daemon never opens a file a
 * client names, the client opens it and passes the descriptor. A
 * descriptor on any other message is a malformed message.
 */
#ifndef CONTROL_CDPROTO_H
#define CONTROL_CDPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cd_type {
	CD_CMD = 1,
	CD_ANSWER,
	CD_MEMORY,
	CD_STATS,
	CD_OUT,
	CD_ERR,
	CD_ASK,
	CD_DONE,
	CD_NOT_MINE,
	CD_FD,
	CD_TYPE_MAX
};

#define CD_F_YES 1u
#define CD_F_JSON 2u
#define CD_F_STORE 4u
#define CD_F_PUB 8u
#define CD_F_ALL 15u

#define CD_PAYLOAD_MAX (64u * 1024)	/* no message is longer */
#define CD_TEXT_MAX 16384		/* CD_OUT / CD_ERR chunks */
#define CD_WORDS_MAX 24
#define CD_WORD_MAX 4096
#define CD_ANSWER_MAX 512
#define CD_FDS_MAX 6			/* descriptors one command may carry */

/* What a CD_FD descriptor is and how the client opened it. */
enum cd_fd_kind {
	CD_FD_READ = 1,		/* a regular file, O_RDONLY */
	CD_FD_WRITE,		/* a new empty regular file, O_WRONLY, mode 0600 */
	CD_FD_DIR,		/* a directory, O_RDONLY|O_DIRECTORY */
	CD_FD_KIND_MAX
};

struct cd_fd {
	uint32_t word;		/* index among the CD_CMD strings (paths included) */
	uint32_t kind;		/* enum cd_fd_kind */
};

struct cd_hdr {
	uint32_t type;
	uint32_t len;
};

/* Allocator statistics; jemalloc 0 when the daemon runs on libc malloc. */
struct cd_memory {
	uint64_t jemalloc;
	uint64_t allocated, active, resident, retained, mapped;
};

struct cd_stats {
	uint64_t pid;
	uint64_t clients;	/* connections accepted */
	uint64_t commands;	/* CD_CMD run */
	uint64_t bad_messages;	/* connections closed for a malformed message */
	uint64_t locked;	/* commands answered "locked" */
	uint64_t published;	/* publications made */
	uint64_t served;	/* ... that every lcore of tvsd served in time */
	uint64_t not_served;	/* tvsd unreachable or too slow */
	uint64_t refused;	/* tvsd refused the reload */
	uint64_t denied;	/* commands refused: the peer lacks the level */
	uint64_t busy;		/* connections refused: no session slot for that uid */
	uint64_t expired;	/* sessions closed at the end of their time */
	uint64_t bad_files;	/* commands refused: a file not passed, or not fit */
	uint64_t configs_rejected; /* config folder entries publish refused (links,
				    * FIFOs, oversized files: store/STORE.md) */
};

/*
 * Reads one message: the header, then the payload into buf (cap bytes)
 * within timeout_ms. Returns the payload length, or -1 (EOF, timeout or I/O
 * error before the first byte; errno says which: 0 for EOF) or -2 (a
 * message cut short, or a header whose type or length cannot be valid:
 * the peer is broken).
 */
int cd_recv(int fd, struct cd_hdr *h, uint8_t *buf, size_t cap, int timeout_ms);
/* cd_recv that also takes the descriptors riding on the message (close-on-
 * exec): up to max into fds, *nfds says how many; any beyond max, or cut
 * off by the kernel, make it return -2 (all closed). */
int cd_recv_fds(int fd, struct cd_hdr *h, uint8_t *buf, size_t cap, int timeout_ms,
	int *fds, int max, int *nfds);
int cd_send(int fd, uint32_t type, const void *p, size_t len);
int cd_send_u32(int fd, uint32_t type, uint32_t v);
/* One CD_FD message carrying passfd. */
int cd_send_fd(int fd, uint32_t word, uint32_t kind, int passfd);

/* True when the descriptor is what a CD_FD of this kind promises (fstat
 * and its open flags: never O_PATH; READ a regular file readable through
 * it; WRITE an empty regular file of mode 0600 opened write-only; DIR a
 * directory opened for reading); why says what is wrong otherwise. */
bool cd_fd_ok(int fd, uint32_t kind, char *why, size_t whysz);

/* True when a payload of this type has the shape above, from the side that
 * may send it (from_daemon). Strings are checked to be NUL-terminated and
 * to fill the payload exactly. */
bool cd_check(uint32_t type, const uint8_t *p, size_t len, bool from_daemon);

/* The strings of a checked CD_CMD payload, in order; returns their count. */
int cd_cmd_words(const uint8_t *p, size_t len, uint32_t *flags, char **words, int max);

#endif
