// Validate an AsyncAPI 3.0 document against the published JSON schema (@asyncapi/specs) with ajv.
// Usage: node validate_asyncapi.mjs FILE.json ; prints "valid" or the errors (exit 1).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const specs = require("@asyncapi/specs");
const Ajv = require("ajv");

const document = JSON.parse(readFileSync(process.argv[2], "utf8"));
const schema = specs.schemas[document.asyncapi];
if (schema === undefined) {
  console.log(`no published schema for asyncapi ${document.asyncapi}`);
  process.exit(1);
}
// meta: false: the published schema embeds the draft-07 meta-schema under its own $id.
const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false, meta: false });
const validate = ajv.compile(schema);
if (validate(document)) {
  console.log("valid");
} else {
  console.log(JSON.stringify(validate.errors, null, 2));
  process.exit(1);
}
