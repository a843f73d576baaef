#include "autoconf.h"

#include "json_get.h"
#include "util.h"

/* The member, NULL when absent or null. */
static json_object *
member(json_object *j, const char *key)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(j, key, &v))
		return NULL;
	return v;
}

int
wx_json_opt_i64(json_object *j, const char *key, int64_t *out)
{
	json_object *v = member(j, key);
	if (v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	*out = json_object_get_int64(v);
	return 0;
}

int
wx_json_opt_str(json_object *j, const char *key, char **out)
{
	json_object *v = member(j, key);
	if (v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	*out = xstrdup(json_object_get_string(v));
	return 0;
}

int
wx_json_opt_fixed(json_object *j, const char *key, char *out, size_t size)
{
	json_object *v = member(j, key);
	if (v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) >= size)
		return -1;
	wx_strlcpy(out, json_object_get_string(v), size);
	return 0;
}

int
wx_json_req_fixed(json_object *j, const char *key, char *out, size_t size)
{
	if (member(j, key) == NULL)
		return -1;
	return wx_json_opt_fixed(j, key, out, size);
}
