/* Internal: all-or-nothing outputs (temporary name, then rename), shared
 * by the container pipelines and the programs. */
#ifndef DF11_FSUTIL_H
#define DF11_FSUTIL_H

#include <stdint.h>

#include "df11.h"

/* write(2) until done (EINTR and short writes handled). */
df11_result df11_write_all(int fd, const void *p, uint64_t n,
			   const char *path);
/* Reserves the first len bytes' blocks of a new file that will be
 * written through the page cache, without changing its size, where the
 * file system can: writes then find their blocks allocated instead of
 * reserving each one as it comes (ext4 delayed allocation, about a fifth
 * of a buffered write's system time). Not for O_DIRECT writes, whose
 * reserved blocks would have to be converted as they land. A hint:
 * nothing happens where the file system cannot. */
void df11_reserve_blocks(int fd, uint64_t len);
/* "<dir>/.<base>.tmp.XXXXXX" next to final (for mkstemp/mkdtemp). */
char *df11_temp_name(const char *final);
/* DF11_EXISTS if out exists and force is 0. */
df11_result df11_check_output(const char *out, int force);
/* Renames tmp to out; an existing out (file or folder) is replaced, the
 * old one removed only after the new one is in place. */
df11_result df11_commit_output(const char *tmp, const char *out);
/* rm -rf, not following symlinks. */
void df11_remove_tree(const char *path);

#endif
