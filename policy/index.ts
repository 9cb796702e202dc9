/**
 * The kubeadm-ha policy pack: `pulumi preview --policy-pack policy`. Every rule is mandatory, so a
 * violation fails the preview. The rules live in policies.ts, where the tests import them (building a
 * PolicyPack starts a server and must happen only under the Pulumi CLI).
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("kubeadm-ha", { enforcementLevel: "mandatory", policies });
