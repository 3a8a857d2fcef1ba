/*
 * pitbox_auth: a Mosquitto 2.0 plugin (API v5) that gives the broker the Cloud IoT Core
 * auth convention it lacks natively.
 *
 *  - Devices connect with client id = device id (bare, or the full
 *    projects/{p}/locations/{r}/registries/{reg}/devices/{device} form) and password = an
 *    RS256 JWT whose `aud` is the project. The public key is read from
 *    <keys_dir>/<device>.pem on every CONNECT, so deleting the file revokes the device.
 *  - Service accounts (the cloud bridge) connect with a username from the accounts file and
 *    a password checked against its PBKDF2-SHA256 hash.
 *  - The ACL keeps each device inside <prefix>/<device>/ and lets service accounts read the
 *    whole prefix (also through $share/<group>/) and write config and commands, and use
 *    pitbox/bridges/ (the bridges' presence, with which a survivor takes over a dead one).
 *
 * Anything unexpected is a refusal: MOSQ_ERR_AUTH / MOSQ_ERR_ACL_DENIED, never a defer.
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define MAX_TOKEN 8192     /* a real token is ~455 bytes; bound before any decoding */
#define MAX_ACCOUNTS 64
#define MAX_NAME 64
#define MAX_SALT 64
#define HASH_LEN 32        /* SHA-256 */
#define MAX_ITERATIONS 10000000L
#define BRIDGES_ROOT "pitbox/bridges/" /* service accounts only: read, subscribe, write */

struct account {
	char name[MAX_NAME + 1];
	long iterations;
	unsigned char salt[MAX_SALT];
	size_t salt_len;
	unsigned char hash[HASH_LEN];
};

/* One broker, one plugin instance: a static config keeps the callbacks simple. */
static struct {
	mosquitto_plugin_id_t *id;
	char keys_dir[PATH_MAX / 2];
	char audience[256];
	char prefix[128];
	long leeway_s;
	long max_lifetime_s;
	/* hold_devices: refuse device logins until a service account (the bridge) has
	 * subscribed to device events. Mosquitto 2.0 does not restore shared subscriptions
	 * from persistence, so after a broker restart a device that got in first would have
	 * its messages acknowledged and routed to nobody; refused, it keeps them buffered. */
	bool hold_devices;
	bool events_subscribed;
	struct account accounts[MAX_ACCOUNTS];
	int n_accounts;
} cfg;

/* Decode base64 (url=false) or base64url (url=true); '=' padding only at the end.
 * Returns the decoded length or -1. `out` must hold at least len*3/4+3 bytes. */
static long b64_decode(const char *in, size_t len, unsigned char *out, bool url)
{
	unsigned int acc = 0, bits = 0;
	long n = 0;
	while (len > 0 && in[len - 1] == '=') len--;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		int v;
		if (c >= 'A' && c <= 'Z') v = c - 'A';
		else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
		else if (c >= '0' && c <= '9') v = c - '0' + 52;
		else if (c == (url ? '-' : '+')) v = 62;
		else if (c == (url ? '_' : '/')) v = 63;
		else return -1;
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)((acc >> bits) & 0xff);
		}
	}
	return bits >= 6 ? -1 : n; /* 6 leftover bits = an impossible length */
}

/* Account lines: name:pbkdf2_sha256:ITERATIONS:SALT_B64:HASH_B64. A malformed line makes
 * init fail: a silently skipped bridge account would look like a network problem later. */
static int parse_account(char *line, struct account *a)
{
	char *fields[5], *save = NULL, *p = line;
	unsigned char buf[128];
	for (int i = 0; i < 5; i++) {
		fields[i] = strtok_r(p, ":", &save);
		p = NULL;
		if (!fields[i]) return -1;
	}
	if (strtok_r(NULL, ":", &save)) return -1;
	if (strlen(fields[0]) > MAX_NAME || strcmp(fields[1], "pbkdf2_sha256") != 0) return -1;
	char *end;
	a->iterations = strtol(fields[2], &end, 10);
	if (*end || a->iterations < 1 || a->iterations > MAX_ITERATIONS) return -1;
	size_t sl = strlen(fields[3]), hl = strlen(fields[4]);
	if (sl > 88 || hl > 88) return -1;
	long n = b64_decode(fields[3], sl, buf, false);
	if (n < 1 || n > MAX_SALT) return -1;
	memcpy(a->salt, buf, (size_t)n);
	a->salt_len = (size_t)n;
	if (b64_decode(fields[4], hl, buf, false) != HASH_LEN) return -1;
	memcpy(a->hash, buf, HASH_LEN);
	strcpy(a->name, fields[0]);
	return 0;
}

/* Read once at init, not per CONNECT: the ACL decides "service account or device" from the
 * username, and that decision must use the same table the password was checked against. */
static int load_accounts(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int lineno = 0;
	if (!f) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "pitbox_auth: cannot open accounts %s", path);
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		char *s = line;
		while (isspace((unsigned char)*s)) s++;
		if (*s == '\0' || *s == '#') continue;
		if (cfg.n_accounts == MAX_ACCOUNTS || parse_account(s, &cfg.accounts[cfg.n_accounts])) {
			mosquitto_log_printf(MOSQ_LOG_ERR, "pitbox_auth: %s:%d: bad account line",
					path, lineno);
			fclose(f);
			return -1;
		}
		cfg.n_accounts++;
	}
	fclose(f);
	return 0;
}

static const struct account *find_account(const char *username)
{
	if (!username) return NULL;
	for (int i = 0; i < cfg.n_accounts; i++)
		if (strcmp(cfg.accounts[i].name, username) == 0) return &cfg.accounts[i];
	return NULL;
}

static int check_account(const struct account *a, const char *password)
{
	unsigned char out[HASH_LEN];
	if (!password || strlen(password) > 1024) return MOSQ_ERR_AUTH;
	if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), a->salt, (int)a->salt_len,
			(int)a->iterations, EVP_sha256(), HASH_LEN, out))
		return MOSQ_ERR_AUTH;
	/* Constant time, so the comparison does not leak how many bytes matched. */
	return CRYPTO_memcmp(out, a->hash, HASH_LEN) == 0 ? MOSQ_ERR_SUCCESS : MOSQ_ERR_AUTH;
}

/* If s starts with prefix, return what follows it, else NULL. */
static const char *after(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* IoT Core ids: [a-zA-Z][-a-zA-Z0-9._~%]{2,254}, not starting with "goog". '+' is left out
 * on purpose (IoT Core allows it): it is an MQTT wildcard and the id becomes a topic level. */
static bool valid_id(const char *s, size_t len)
{
	if (len < 3 || len > 255 || !isalpha((unsigned char)s[0])) return false;
	if (strncasecmp(s, "goog", 4) == 0) return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && (!s[i] || !strchr("-._~%", s[i]))) return false;
	return memmem(s, len, "..", 2) == NULL;
}

/* Client id -> device id (copied into out), or false. Used by auth and by the ACL. */
static bool device_from_client_id(const char *cid, char *out, size_t out_size)
{
	static const char *names[] = {"projects/", "locations/", "registries/", "devices/"};
	const char *dev = cid;
	if (!cid) return false;
	if (strchr(cid, '/')) {
		const char *p = cid;
		for (int i = 0; i < 4; i++) {
			if ((p = after(p, names[i])) == NULL) return false;
			if (i == 3) break;
			const char *slash = strchr(p, '/');
			size_t n = slash ? (size_t)(slash - p) : 0;
			/* The project must be ours (one broker serves one project); the region and
			 * registry only need to look like ids. */
			if (i == 0 ? n != strlen(cfg.audience) || strncmp(p, cfg.audience, n) != 0
					: !valid_id(p, n))
				return false;
			p = slash + 1;
		}
		dev = p;
	}
	size_t len = strlen(dev);
	if (!valid_id(dev, len) || len >= out_size) return false;
	memcpy(out, dev, len + 1);
	return true;
}

static EVP_PKEY *load_key(const char *device)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/%s.pem", cfg.keys_dir, device);
	if (n < 0 || (size_t)n >= sizeof path) return NULL;
	FILE *f = fopen(path, "r");
	if (!f) return NULL;
	EVP_PKEY *key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (key && EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	return key;
}

static bool verify_rs256(EVP_PKEY *key, const char *data, size_t data_len,
		const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1
		&& EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)data, data_len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* A JSON number that is a finite whole count of seconds in a sane range. */
static bool get_seconds(const cJSON *obj, const char *name, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return false;
	if (v->valuedouble < 0 || v->valuedouble > 1e13) return false;
	*out = (long long)v->valuedouble;
	return true;
}

static bool claims_ok(const cJSON *claims)
{
	long long iat, exp, now = (long long)time(NULL);
	const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
	if (!cJSON_IsObject(claims) || !get_seconds(claims, "iat", &iat)
			|| !get_seconds(claims, "exp", &exp))
		return false;
	if (!cJSON_IsString(aud) || strcmp(aud->valuestring, cfg.audience) != 0) return false;
	return exp > now && iat <= now + cfg.leeway_s && exp > iat
		&& exp - iat <= cfg.max_lifetime_s;
}

static bool check_jwt(const char *device, const char *token)
{
	size_t len = token ? strnlen(token, MAX_TOKEN + 1) : 0;
	if (len == 0 || len > MAX_TOKEN) return false;
	const char *dot1 = strchr(token, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot1 || !dot2 || strchr(dot2 + 1, '.') || dot1 == token || dot2 == dot1 + 1
			|| dot2[1] == '\0')
		return false;

	/* Every decoded part is shorter than the token, so one buffer size fits all. */
	unsigned char *header = malloc(len + 1), *payload = malloc(len + 1), *sig = malloc(len + 1);
	cJSON *hdr = NULL, *claims = NULL;
	EVP_PKEY *key = NULL;
	bool ok = false;
	if (!header || !payload || !sig) goto out;
	long hl = b64_decode(token, (size_t)(dot1 - token), header, true);
	long pl = b64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, true);
	long sl = b64_decode(dot2 + 1, len - (size_t)(dot2 - token) - 1, sig, true);
	if (hl <= 0 || pl <= 0 || sl <= 0) goto out;

	/* Exactly RS256: this is what rejects alg=none and HS256-with-the-public-key. */
	hdr = cJSON_ParseWithLength((const char *)header, (size_t)hl);
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
	if (!cJSON_IsString(alg) || strcmp(alg->valuestring, "RS256") != 0) goto out;

	key = load_key(device);
	if (!key || !verify_rs256(key, token, (size_t)(dot2 - token), sig, (size_t)sl)) goto out;

	claims = cJSON_ParseWithLength((const char *)payload, (size_t)pl);
	ok = claims_ok(claims);
out:
	cJSON_Delete(hdr);
	cJSON_Delete(claims);
	EVP_PKEY_free(key);
	free(header);
	free(payload);
	free(sig);
	return ok;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *cid = mosquitto_client_id(ed->client);
	char device[256];
	(void)event;
	(void)userdata;

	/* A service account name is never a device login: wrong password = refused. */
	const struct account *a = find_account(ed->username);
	if (a) {
		int rc = check_account(a, ed->password);
		if (rc != MOSQ_ERR_SUCCESS)
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "pitbox_auth: bad password for %s", a->name);
		return rc;
	}
	if (!device_from_client_id(cid, device, sizeof device)) {
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "pitbox_auth: refused client id");
		return MOSQ_ERR_AUTH;
	}
	if (!check_jwt(device, ed->password)) {
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "pitbox_auth: bad token for device %s", device);
		return MOSQ_ERR_AUTH;
	}
	if (cfg.hold_devices && !cfg.events_subscribed) {
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"pitbox_auth: holding device %s off: no bridge has subscribed yet", device);
		return MOSQ_ERR_AUTH;
	}
	return MOSQ_ERR_SUCCESS;
}

/* "commands" or "commands/..." */
static bool is_commands(const char *rest)
{
	const char *r = after(rest, "commands");
	return r && (*r == '\0' || *r == '/');
}

static bool service_acl(const char *topic, int access)
{
	char base[sizeof cfg.prefix + 1];
	const char *rest;
	snprintf(base, sizeof base, "%s/", cfg.prefix);
	if (access == MOSQ_ACL_SUBSCRIBE && (rest = after(topic, "$share/")) != NULL) {
		const char *slash = strchr(rest, '/');
		if (!slash || slash == rest) return false;
		topic = slash + 1;
	}
	/* The bridges' presence and takeover markers (cloud/bridge/presence.py): outside the
	 * device prefix, so no device can read or write them. */
	if (after(topic, BRIDGES_ROOT)) return true;
	rest = after(topic, base);
	if (!rest) return false;
	if (access == MOSQ_ACL_READ || access == MOSQ_ACL_SUBSCRIBE) return true;
	/* write: <prefix>/<device>/config or <prefix>/<device>/commands[/...] */
	const char *slash = strchr(rest, '/');
	if (!slash || slash == rest) return false;
	return strcmp(slash + 1, "config") == 0 || is_commands(slash + 1);
}

static bool device_acl(const char *device, const char *topic, int access)
{
	char base[sizeof cfg.prefix + 260];
	snprintf(base, sizeof base, "%s/%s/", cfg.prefix, device);
	const char *rest = after(topic, base);
	if (!rest) return false;
	if (access == MOSQ_ACL_WRITE)
		return strcmp(rest, "events") == 0 || strncmp(rest, "events/", 7) == 0
			|| strcmp(rest, "state") == 0;
	/* read/subscribe: exact config, or the commands subtree (any wildcard there stays
	 * inside it, so it can only match this device's commands). */
	return strcmp(rest, "config") == 0 || is_commands(rest);
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	char device[256];
	(void)event;
	(void)userdata;

	if (ed->access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
	if (!ed->topic) return MOSQ_ERR_ACL_DENIED;
	/* Mosquitto 2.0 only runs ACL checks for clients that passed auth, so a username that
	 * names an account has proven its password. */
	if (find_account(mosquitto_client_username(ed->client))) {
		if (!service_acl(ed->topic, ed->access)) return MOSQ_ERR_ACL_DENIED;
		/* Only the bridge's shared subscription counts: it is what Mosquitto forgets. */
		if (ed->access == MOSQ_ACL_SUBSCRIBE && !cfg.events_subscribed
				&& after(ed->topic, "$share/") && strstr(ed->topic, "/events") != NULL) {
			cfg.events_subscribed = true;
			if (cfg.hold_devices)
				mosquitto_log_printf(MOSQ_LOG_NOTICE,
						"pitbox_auth: %s subscribed to device events; devices may connect",
						mosquitto_client_username(ed->client));
		}
		return MOSQ_ERR_SUCCESS;
	}
	if (device_from_client_id(mosquitto_client_id(ed->client), device, sizeof device)
			&& device_acl(device, ed->topic, ed->access))
		return MOSQ_ERR_SUCCESS;
	return MOSQ_ERR_ACL_DENIED;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < min || v > max) return false;
	*out = v;
	return true;
}

static bool copy_opt(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n == 0 || n >= size) return false;
	memcpy(dst, src, n + 1);
	return true;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *opts, int opt_count)
{
	const char *accounts = NULL;
	bool ok = true;
	(void)userdata;
	memset(&cfg, 0, sizeof cfg);
	strcpy(cfg.prefix, "/devices");
	cfg.leeway_s = 600;
	cfg.max_lifetime_s = 86400;

	for (int i = 0; i < opt_count; i++) {
		const char *k = opts[i].key, *v = opts[i].value;
		if (!strcmp(k, "keys_dir")) ok &= copy_opt(cfg.keys_dir, sizeof cfg.keys_dir, v);
		else if (!strcmp(k, "audience")) ok &= copy_opt(cfg.audience, sizeof cfg.audience, v);
		else if (!strcmp(k, "prefix")) ok &= copy_opt(cfg.prefix, sizeof cfg.prefix, v);
		else if (!strcmp(k, "leeway")) ok &= parse_long(v, 0, 86400, &cfg.leeway_s);
		else if (!strcmp(k, "max_lifetime"))
			ok &= parse_long(v, 1, 30L * 86400, &cfg.max_lifetime_s);
		else if (!strcmp(k, "accounts")) accounts = v;
		else if (!strcmp(k, "hold_devices"))
			ok &= (cfg.hold_devices = !strcmp(v, "true")) || !strcmp(v, "false");
		if (!ok) {
			mosquitto_log_printf(MOSQ_LOG_ERR, "pitbox_auth: bad plugin_opt_%s", k);
			return MOSQ_ERR_INVAL;
		}
	}
	/* The prefix is compared literally; wildcards or a trailing '/' would widen the ACL. */
	size_t pl = strlen(cfg.prefix);
	if (!cfg.keys_dir[0] || !cfg.audience[0] || strpbrk(cfg.prefix, "+#$")
			|| cfg.prefix[pl - 1] == '/') {
		mosquitto_log_printf(MOSQ_LOG_ERR,
				"pitbox_auth: need plugin_opt_keys_dir, plugin_opt_audience, a plain prefix");
		return MOSQ_ERR_INVAL;
	}
	if (accounts && load_accounts(accounts)) return MOSQ_ERR_INVAL;

	cfg.id = identifier;
	if (mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL)
			|| mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check,
				NULL, NULL))
		return MOSQ_ERR_UNKNOWN;
	mosquitto_log_printf(MOSQ_LOG_INFO, "pitbox_auth: audience %s, prefix %s, %d account(s)%s",
			cfg.audience, cfg.prefix, cfg.n_accounts,
			cfg.hold_devices ? ", devices held off until the bridge subscribes" : "");
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	(void)userdata;
	(void)opts;
	(void)opt_count;
	if (cfg.id) {
		mosquitto_callback_unregister(cfg.id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
		mosquitto_callback_unregister(cfg.id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	}
	/* Wipe the password hashes rather than leave them in freed-later static memory. */
	OPENSSL_cleanse(&cfg, sizeof cfg);
	return MOSQ_ERR_SUCCESS;
}
