/* libFuzzer target: the config loader on arbitrary YAML. */
#include "autoconf.h"

#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	char err[1024];
	struct wx_config *cfg = wx_config_load(path, err, sizeof err);
	if (cfg != NULL) {
		FILE *null = fopen("/dev/null", "w");
		if (null != NULL) {
			wx_config_print(cfg, null);
			fclose(null);
		}
	}
	wx_config_free(cfg);
	close(fd);
	return 0;
}
