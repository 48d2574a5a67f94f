/*
 * raysubmit: kubesim runs KubeRay's submitter container for real
 * (../shared/spec/kuberay-behavior.md §2.5): the `ray job status` / `ray job submit` / `ray job
 * logs --follow` shell of a K8sJobMode Job pod or of the `ray-job-submitter` container of a
 * SidecarMode head pod, played in process against the simulated Ray heads (raysim_dial(): no
 * sockets, no API server).
 *
 * Parsing (raysubmit_parse()). A container is a submitter when its command + args contain
 * `ray job submit` (raysubmit_detect()). `sh|bash|dash|zsh ... -c <script>` is lexed like a POSIX
 * shell (quotes, backslashes, $VAR / ${VAR} from the container's literal env, redirections
 * dropped, `;` `&&` `||` `|` `&` newlines as separators); any other command is taken as an argv.
 * From `ray job submit`: --address, --submission-id (or --job-id), --runtime-env-json,
 * --metadata-json, --entrypoint-num-cpus/-gpus/-memory, --entrypoint-resources, --no-wait
 * (`--opt value` and `--opt=value`), and the entrypoint: in a shell script the raw text from the
 * word after `--` to the end of that command (the next unquoted separator, e.g. the ` ;` before
 * `fi ; ray job logs`), quotes kept as written, so it equals the RayJob's spec.entrypoint; in
 * argv form the words joined with spaces. KubeRay's lightweight Go submitter (argv `/submitter
 * [options] -- <entrypoint>`, image quay.io/kuberay/submitter) is a submitter too: same options,
 * played as `ray job status` + `ray job submit --no-wait` + `ray job logs --follow` without the
 * health wait (the Go binary POSTs, takes an existing submission id as submitted, tails the logs
 * and exits 0). Env RAY_DASHBOARD_ADDRESS / RAY_JOB_SUBMISSION_ID
 * stand in for a missing --address / --submission-id. The script also says whether it waits for
 * /api/gcs_healthz first (`until ... gcs_healthz ...`), checks `ray job status` first, and runs
 * `ray job logs [--follow]` afterwards.
 *
 * Address: http://<svc>[.<ns>[.svc[.<domain>]]]:<port> is Service <svc> in <ns> (default: the
 * pod's namespace); 127.0.0.1 / localhost / [::1] is the pod's own head (SidecarMode); a port
 * is required (default 80, as an URL has); any other host is never reachable.
 *
 * Behaviour (raysubmit_step(), one bounded step at a time; the kubelet keeps it in its due heap):
 *  1. with the health loop: GET /api/gcs_healthz every poll_ms until 200 with `success` (the
 *     script sleeps 2 s; a simulated poll is shorter). SIMPLIFICATION: the real loop never ends
 *     when the Service does not exist (python exits 1 on NXDOMAIN, `until` retries forever and
 *     KubeRay relies on the Job's deadline); here the container exits 1 once the name has failed
 *     to resolve for dns_fail_ms in a row, so a Job's backoffLimit / BackoffLimitExceeded is
 *     reachable.
 *  2. with `ray job status`: GET /api/jobs/<id>; 200 skips the submission (a restarted submitter
 *     pod does not submit twice).
 *  3. POST /api/jobs/ with what the Ray CLI sends: entrypoint, submission_id, runtime_env ({}
 *     default), metadata ({} default), entrypoint_num_cpus / _num_gpus / _memory /
 *     _resources (null when not given). Unreachable, NXDOMAIN, a non-200 answer (duplicate id,
 *     bad request) or an unparsable JSON option: exit 1 (bash -e).
 *  4. `ray job logs --follow`: the WebSocket tail is played by polling GET /api/jobs/<id> every
 *     poll_ms: a job that cannot be found or reached at the start exits 1; a terminal status
 *     (whatever it is), a vanished job (head restarted) or a lost connection exits 0, as the CLI
 *     does when the stream ends. Without --follow: GET .../logs once, exit 0 on 200.
 *     `ray job submit` without --no-wait (SidecarMode short form) tails the same way, then exits
 *     0 when the job SUCCEEDED and 1 when it FAILED or STOPPED or the head went away.
 *  Not played: the GET /api/version handshake, working_dir / py_modules uploads, token auth
 *  headers, log output.
 */
#ifndef RF_RAYSUBMIT_H
#define RF_RAYSUBMIT_H

#include "raysim.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAYSUBMIT_CONTAINER "ray-job-submitter" /* KubeRay's submitter container name */
#define RAYSUBMIT_POLL_MS 200 /* default simulated poll period */
#define RAYSUBMIT_DNS_FAIL_MS 10000 /* default NXDOMAIN time before exiting 1 */
#define RAYSUBMIT_SCRIPT_MAX (256u * 1024u) /* longest script accepted */

/* What a submitter container's command says. Strings owned (raysubmit_spec_free()). */
typedef struct {
    char *address; /* --address or RAY_DASHBOARD_ADDRESS, NULL = none */
    char *service; /* Service name, NULL when local or unresolvable */
    char *service_ns; /* its namespace */
    int port; /* port of the address */
    bool local; /* 127.0.0.1 / localhost / ::1: the pod's own head */
    char *submission_id; /* NULL = the head generates one */
    char *entrypoint; /* the job's entrypoint, NULL when missing */
    json_t *runtime_env; /* --runtime-env-json, parsed (owned), NULL = none */
    json_t *metadata; /* --metadata-json, parsed (owned), NULL = none */
    json_t *resources; /* --entrypoint-resources, parsed (owned), NULL = none */
    double num_cpus, num_gpus, memory; /* --entrypoint-num-cpus / -gpus / -memory */
    bool has_cpus, has_gpus, has_memory; /* which of them were given */
    bool wait_health; /* the script loops on /api/gcs_healthz first */
    bool check_status; /* `ray job status` decides whether to submit */
    bool no_wait; /* --no-wait */
    bool logs; /* `ray job logs` runs afterwards */
    bool follow; /* ... with --follow */
    char error[256]; /* why `ray job submit` would fail before sending (empty = fine) */
} raysubmit_spec_t;

/* Timing of a run. */
typedef struct {
    int64_t poll_ms; /* health / follow poll period (<= 0: RAYSUBMIT_POLL_MS) */
    int64_t dns_fail_ms; /* NXDOMAIN for this long -> exit 1 (<= 0: RAYSUBMIT_DNS_FAIL_MS) */
} raysubmit_opts_t;

typedef struct raysubmit raysubmit_t;

/* True when container's command + args contain `ray job submit` or run the lightweight Go
 * submitter `/submitter`. */
bool raysubmit_detect(const json_t *container);

/* Index of the submitter container of pod (container named RAYSUBMIT_CONTAINER first, else the
 * first container that raysubmit_detect() accepts), or -1. */
int raysubmit_find(const json_t *pod);

/* Parses container (a Pod container object) of a pod in namespace ns into *out (zeroed first;
 * free with raysubmit_spec_free() after any return). Returns 0 (problems the CLI would meet at
 * run time go to out->error), ERR_INVAL (NULL arguments, not a submitter), ERR_TOOBIG (script
 * over RAYSUBMIT_SCRIPT_MAX) or ERR_NOMEM. */
int raysubmit_parse(const json_t *container, const char *ns, raysubmit_spec_t *out);

/* Frees a spec's contents. NULL-safe. */
void raysubmit_spec_free(raysubmit_spec_t *spec);

/* The JSON body `ray job submit` POSTs for spec (new reference), or NULL when out of memory. */
json_t *raysubmit_body(const raysubmit_spec_t *spec);

/* Starts a run of container `idx` of pod (namespace, name and spec read now) at now_ms. opts may
 * be NULL (defaults). Returns NULL when out of memory or the container is not a submitter. */
raysubmit_t *raysubmit_new(const json_t *pod, int idx, const raysubmit_opts_t *opts,
                           int64_t now_ms);

/* Frees a run. NULL-safe; NULLs *sp. */
void raysubmit_destroy(raysubmit_t **sp);

/* The parsed command of a run (borrowed). */
const raysubmit_spec_t *raysubmit_spec(const raysubmit_t *s);

/* Advances the run at now_ms: at most a few in-process calls to r. Returns 0 while the
 * container still runs (*next_ms = when to call again), 1 when it has exited (*exit_code set),
 * ERR_INVAL for NULL arguments. A NULL r makes every address unreachable. */
int raysubmit_step(raysubmit_t *s, raysim_t *r, int64_t now_ms, int64_t *next_ms, int *exit_code);

/* Self-test. */
int raysubmit_test(bool verbose);

#endif
