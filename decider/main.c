/* SPDX-License-Identifier: MPL-2.0 */
/* kl-decider: progressive enforcement per source (DESIGN §6). */
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/status.h"
#include "decider/decider.h"

int main(int argc, char *argv[])
{
	struct kl_errs errs = { 0 };
	struct dec_config cfg;
	enum kl_cli_action act;
	char *canonical = NULL;
	int rc;

	kl_log_init("kl-decider", KL_LOG_INFO);
	rc = dec_load_config(argc, argv, &cfg, &act, &canonical, &errs);
	if (act != KL_CLI_RUN) {
		if (act == KL_CLI_HELP)
			dec_help(stdout, "kl-decider");
		else if (act == KL_CLI_HELP_MD)
			dec_help_markdown(stdout);
		else if (act == KL_CLI_HELP_MAN)
			dec_help_man(stdout);
		else if (act == KL_CLI_HELP_MAN_FILE)
			dec_help_man_file(stdout);
		else
			printf("kl-decider (Kernloom) %s\n", KL_VERSION);
		kl_errs_free(&errs);
		return 0;
	}
	if (cfg.v.config_check) /* report the files' problems too, all at once */
		dec_check_files(&cfg, &errs);
	if (errs.n > 0) {
		kl_errs_print_prog(&errs, "kl-decider", stderr);
		rc = KL_EXIT_CONFIG;
	} else if (cfg.v.policy_canonical) {
		fputs(canonical != NULL ? canonical : "", stdout);
	} else if (cfg.v.config_check) {
		dec_config_print(&cfg, stdout);
	} else if (cfg.v.replay[0] != '\0') {
		kl_log_init("kl-decider", (enum kl_log_level)cfg.v.log_level);
		rc = dec_run_replay(&cfg);
	} else {
		kl_log_init("kl-decider", (enum kl_log_level)cfg.v.log_level);
		rc = dec_run_live(&cfg, argc, argv);
	}
	free(canonical);
	dec_config_free(&cfg);
	kl_errs_free(&errs);
	return rc;
}
