"""python -m emulator serve | stop | ctl"""
import argparse
import json
import logging
import os
import sys


def _serve_args(args):
    out = ["--port", str(args.port)]
    for flag, value in (("--time-scale", args.time_scale), ("--page-size", args.page_size),
                        ("--specs", args.specs), ("--fixture", args.fixture),
                        ("--latest-model", args.latest_model)):
        if value is not None:
            out += [flag, str(value)]
    if args.no_throttling:
        out.append("--no-throttling")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Local Azure (ARM) emulator")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the emulator")
    serve.add_argument("--state-dir", required=True)
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port (see env.json)")
    serve.add_argument("--time-scale", type=float, help="multiply every realistic duration (e.g. 0.01)")
    serve.add_argument("--page-size", type=int, help="items per page of list operations")
    serve.add_argument("--specs", help="path to the azure-specs folder (default ../shared/azure-specs)")
    serve.add_argument("--fixture", help="a JSON landing zone to seed (resource groups, networks)")
    serve.add_argument("--no-throttling", action="store_true", help="switch Compute throttling off")
    serve.add_argument("--latest-model", choices=["generation", "content"],
                       help="latestModelApplied by model generation (Azure, the default) or by model content")
    serve.add_argument("--background", action="store_true", help="detach; return when ready")
    serve.add_argument("--verbose", action="store_true")

    stop = sub.add_parser("stop", help="stop a background emulator")
    stop.add_argument("--state-dir", required=True)

    ctl = sub.add_parser("ctl", help="call the control API, e.g. ctl GET config, ctl POST faults '{...}'")
    ctl.add_argument("--state-dir", required=True)
    ctl.add_argument("method", choices=["GET", "POST", "PATCH", "DELETE", "get", "post", "patch", "delete"])
    ctl.add_argument("path", help="path under /_emulator/, e.g. faults, health-rules, config, traffic")
    ctl.add_argument("body", nargs="?", help="JSON body")

    figures = sub.add_parser("figures", help="summarise the traffic log (requests, 429s, reaction latency)")
    figures.add_argument("--state-dir", required=True)
    figures.add_argument("--since", type=int, default=0, help="only requests after this traffic sequence number")
    figures.add_argument("--json", action="store_true")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    from emulator import main as runtime

    if args.command == "serve":
        if args.background:
            env = runtime.start_background(args.state_dir, _serve_args(args))
            print(f"emulator ready at {env['FLEETOPS_EMULATOR_URL']}; source {os.path.join(args.state_dir, 'env.sh')}")
            return 0
        runtime.serve(args.state_dir, port=args.port, time_scale=args.time_scale, page_size=args.page_size,
                      spec_root=args.specs, throttling=False if args.no_throttling else None,
                      fixture=args.fixture, latest_model=args.latest_model)
        return 0
    if args.command == "stop":
        stopped = runtime.stop(args.state_dir)
        print("emulator stopped" if stopped else "no emulator running")
        return 0
    if args.command == "ctl":
        from emulator.client import ControlClient
        client = ControlClient.from_state_dir(args.state_dir)
        result = client.call(args.method.upper(), args.path, json.loads(args.body) if args.body else None)
        print(json.dumps(result, indent=2))
        return 0
    if args.command == "figures":
        from emulator import figures as traffic_figures
        return traffic_figures.main(args) or 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
