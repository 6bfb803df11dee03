#!/usr/bin/env python3
"""kube-score's JSON report (--output-format json, v2) on stdin -> one finding a line:

    KIND/NAME <TAB> CONTAINER <TAB> CHECK-ID <TAB> GRADE <TAB> SUMMARIES

A finding is a check that ran (not skipped) with a grade below 10 (1 critical, 5 warning,
7 almost ok); CONTAINER is the comment's path (a container's name) or `-` for the pod or
object as a whole. One line per object, container and check, sorted; SUMMARIES joins the
check's comments for that container with "; ".
"""
import json
import sys

GRADES = {1: "CRITICAL", 5: "WARNING", 7: "ALMOST_OK"}


def main():
    report = json.load(sys.stdin)
    if not isinstance(report, list):
        sys.exit("kube-score report: expected a list of objects")
    found = {}
    for obj in report:
        kind = obj["type_meta"]["kind"]
        name = obj["object_meta"]["name"]
        for check in obj.get("checks") or []:
            if check.get("skipped") or check.get("grade", 10) >= 10:
                continue
            grade = GRADES.get(check["grade"], str(check["grade"]))
            comments = check.get("comments") or [{"path": "", "summary": check["check"]["name"]}]
            for c in comments:
                key = (f"{kind}/{name}", c.get("path") or "-", check["check"]["id"], grade)
                summary = " ".join((c.get("summary") or "").split())
                found.setdefault(key, [])
                if summary not in found[key]:
                    found[key].append(summary)
    for key in sorted(found):
        print("\t".join(key + ("; ".join(found[key]),)))


if __name__ == "__main__":
    main()
