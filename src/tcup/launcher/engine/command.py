"""`tcup image`: the image ahead of a run, or carried to a machine that
cannot build it."""

import sys

from tcup.contract import EXIT_OK
from tcup.launcher.interrupts import interrupted


def build_image(args) -> int:
    """`tcup image`: build ahead of time (or check), print the tag; or
    save it to a file, or load it from one, for a machine with no PyPI."""
    from tcup.launcher.engine.connection import Engine
    from tcup.launcher.engine.image import Image, host_proxies

    engine = Engine.connect()
    image = Image(None if args.load or args.prune else args.ca_cert)
    if args.prune:
        print(image.prune(engine).report(image.tag))
        return EXIT_OK
    if args.load:
        image.load(engine, args.load)
    else:
        with interrupted(lambda: "while preparing the image; a build that had not finished tagged nothing"):
            image.ensure(engine, rebuild=args.rebuild, proxies=host_proxies())
    if args.save:
        image.save(engine, args.save)
        print(f"tcup: saved {image.tag} to {args.save}; on the other machine: tcup image --load {args.save.name}",
              file=sys.stderr)
    print(image.tag)
    return EXIT_OK
