import { CliError } from "./errors.js";
import { promptSecret, readStdin } from "./secrets.js";

/**
 * A channel's URL and signing secret, never arguments (a Slack URL is itself a credential): from stdin
 * with --url-stdin and/or --secret-stdin (one line each, URL first), else on an echo-off prompt.
 */
export async function channelSecretsFrom(
  name: string,
  kind: "webhook" | "slack",
  flags: { "url-stdin"?: boolean; "secret-stdin"?: boolean },
): Promise<{ url: string; secret: string }> {
  if (kind === "slack" && flags["secret-stdin"]) throw CliError.usage("a Slack channel has no signing secret: give no --secret-stdin");
  const piped =
    flags["url-stdin"] || flags["secret-stdin"] ? readStdin(flags["url-stdin"] ? "--url-stdin" : "--secret-stdin").split(/\r?\n/) : [];
  const next = () => piped.shift() ?? "";
  const hint = "pipe it in with --url-stdin / --secret-stdin";
  const url = flags["url-stdin"] ? next() : await promptSecret(`URL of channel ${name} (not echoed): `, hint);
  const secret =
    kind === "slack" ? "" : flags["secret-stdin"] ? next() : await promptSecret(`Signing secret of channel ${name} (not echoed): `, hint);
  if (url === "") throw CliError.usage("the channel URL must not be empty");
  if (kind === "webhook" && secret === "") throw CliError.usage("a webhook channel needs a signing secret (16-256 printable characters)");
  if (piped.some((line) => line !== "")) throw CliError.usage("stdin has more lines than --url-stdin and --secret-stdin take");
  return { url, secret };
}
