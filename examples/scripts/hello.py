def main(name: str = "world", excited: bool = False) -> dict:
    greeting = f"Hello {name}" + ("!" if excited else ".")
    print(greeting)
    return {"greeting": greeting, "letters": len(name)}
