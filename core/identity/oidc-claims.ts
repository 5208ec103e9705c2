import { AppError } from "../kernel/errors.js";
import { excerpt, hasUnsafeCharacters } from "../kernel/text.js";

/** Who signed in, as the identity provider's verified ID token says: what the product keeps of it. */
export interface SignedInIdentity {
  /** The provider's stable id of the person (`sub`), unique per issuer. */
  subject: string;
  email?: string;
  emailVerified: boolean;
  /** Group names from the configured claim, in the provider's order, without duplicates. */
  groups: string[];
}

export const claimLimits = { subjectLength: 255, emailLength: 320, groups: 200, groupLength: 256 } as const;

/**
 * The bounded reading of a verified ID token's claims. The provider is trusted to sign, not to be
 * sane: every value is checked for type, length and characters, and a refusal names the claim
 * (never quoting more than an escaped excerpt of it).
 */
export function identityFromClaims(claims: Record<string, unknown>, groupsClaim: string): SignedInIdentity {
  const subject = boundedText(claims.sub, "sub", claimLimits.subjectLength);
  if (subject === undefined) throw refused("sub", "is missing");
  const email = boundedText(claims.email, "email", claimLimits.emailLength);
  return { subject, email, emailVerified: claims.email_verified === true, groups: groupsFrom(claims[groupsClaim], groupsClaim) };
}

function groupsFrom(value: unknown, claim: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw refused(claim, "must be an array of group names");
  if (value.length > claimLimits.groups) throw refused(claim, `lists ${value.length} groups, more than ${claimLimits.groups}`);
  const groups = new Set<string>();
  value.forEach((item, index) => {
    const name = boundedText(item, `${claim}[${index}]`, claimLimits.groupLength);
    if (name === undefined || name === "") throw refused(`${claim}[${index}]`, "must be a non-empty group name");
    groups.add(name);
  });
  return [...groups];
}

function boundedText(value: unknown, claim: string, maxLength: number): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw refused(claim, "must be a string");
  if (value.length > maxLength) throw refused(claim, `is longer than ${maxLength} characters`);
  if (hasUnsafeCharacters(value)) throw refused(claim, `holds a control or bidirectional character: ${excerpt(value)}`);
  return value;
}

function refused(claim: string, problem: string): AppError {
  return new AppError("unauthenticated", `the identity provider's ID token claim ${excerpt(claim, 80)} ${problem}`);
}
